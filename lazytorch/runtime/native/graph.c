/* graph.c: the hash-consed constructor, the node-death callback, toposort */
static PyObject *g_cache, *g_tables;

/* new_node's state: the Node type, its slots' setters, the cache's weakref type and its
 * slots' setters, and the callback each entry's weakref gets */
static PyTypeObject *g_node_type, *g_ref_type;
static PyObject *g_node_slots[6], *g_ref_key, *g_ref_id, *g_callback;
/* where a Node keeps its device (its member descriptor's offset), and the name read otherwise */
static Py_ssize_t g_device_offset = -1;
static PyObject *g_device_name;
/* Op.FUNCTION: on its first source's device (the others are autograd's edges) */
static PyObject *g_function_op;

/* n.device as a new reference (NULL with an exception) */
static inline PyObject *device_of(PyObject *n) {
    if (Py_TYPE(n) == g_node_type && g_device_offset >= 0) {
        PyObject *d = *(PyObject **)((char *)n + g_device_offset);
        if (d != NULL) {
            Py_INCREF(d);
            return d;
        }
    }
    return PyObject_GetAttr(n, g_device_name);
}

/* the common device of n srcs (None when none has one) as a new reference; sources on two
 * devices raise graph.mixed_devices' error */
static PyObject *common_device(PyObject *srcs, Py_ssize_t n) {
    PyObject *device = Py_None;
    Py_INCREF(device);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *d = device_of(PyTuple_GET_ITEM(srcs, i));
        if (d == NULL) {
            Py_DECREF(device);
            return NULL;
        }
        if (d != device && d != Py_None) {
            int same = device == Py_None ? 0 : PyObject_RichCompareBool(d, device, Py_EQ);
            if (same < 0 || (device != Py_None && !same)) {
                if (same == 0)
                    PyErr_Format(PyExc_RuntimeError, "Expected all tensors to be on the same "
                                 "device, but found at least two devices, %S and %S!", device, d);
                Py_DECREF(d);
                Py_DECREF(device);
                return NULL;
            }
            Py_SETREF(device, d);
            continue;
        }
        Py_DECREF(d);
    }
    return device;
}

static PyObject *setup_graph(PyObject *self, PyObject *args) {
    PyObject *cache, *tables, *node_type, *ref_type, *node_slots, *ref_slots, *callback, *cnst;
    PyObject *function;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!O!OOO", &PyDict_Type, &cache, &PyList_Type, &tables,
                          &PyType_Type, &node_type, &PyType_Type, &ref_type, &PyTuple_Type,
                          &node_slots, &PyTuple_Type, &ref_slots, &callback, &cnst, &function))
        return NULL;
    if (PyTuple_GET_SIZE(node_slots) != 6 || PyTuple_GET_SIZE(ref_slots) != 2) {
        PyErr_SetString(PyExc_ValueError, "6 node slots and 2 weakref slots");
        return NULL;
    }
    PyObject *all[8];
    for (int i = 0; i < 6; i++)
        all[i] = PyTuple_GET_ITEM(node_slots, i);
    all[6] = PyTuple_GET_ITEM(ref_slots, 0);
    all[7] = PyTuple_GET_ITEM(ref_slots, 1);
    for (int i = 0; i < 8; i++)
        if (Py_TYPE(all[i])->tp_descr_set == NULL) {
            PyErr_SetString(PyExc_TypeError, "slots must be settable descriptors");
            return NULL;
        }
    keep(&g_cache, cache);
    keep(&g_tables, tables);
    keep((PyObject **)&g_node_type, node_type);
    keep((PyObject **)&g_ref_type, ref_type);
    if (g_device_name == NULL && (g_device_name = PyUnicode_InternFromString("device")) == NULL)
        return NULL;
    for (int i = 0; i < 6; i++)
        keep(&g_node_slots[i], all[i]);
    keep(&g_ref_key, all[6]);
    keep(&g_ref_id, all[7]);
    g_device_offset = -1;
    if (Py_IS_TYPE(all[5], &PyMemberDescr_Type) &&
        PyDescr_TYPE(all[5]) == (PyTypeObject *)node_type &&
        ((PyMemberDescrObject *)all[5])->d_member->type == T_OBJECT_EX)
        g_device_offset = ((PyMemberDescrObject *)all[5])->d_member->offset;
    keep(&g_callback, callback);
    keep(&g_const, cnst);
    keep(&g_function_op, function);
    Py_RETURN_NONE;
}

static inline int set_slot(PyObject *descr, PyObject *obj, PyObject *value) {
    return Py_TYPE(descr)->tp_descr_set(descr, obj, value);
}

/* new_node(op, srcs, arg, shape, dtype[, device]): graph.new_node, the hash-consed
 * constructor */
static PyObject *new_node(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5 && nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "new_node takes op, srcs, arg, shape, dtype[, device]");
        return NULL;
    }
    if (g_node_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "native.setup_graph() was not called");
        return NULL;
    }
    PyObject *op = args[0], *srcs = args[1], *arg = args[2], *karg, *key, *device;
    if (!PyTuple_Check(srcs)) {
        PyErr_SetString(PyExc_TypeError, "a node's srcs must be a tuple");
        return NULL;
    }
    if (PyTuple_GET_SIZE(srcs) != 0) {
        /* keyed without the device: the sources determine it (found on a miss, below) */
        device = Py_None;
        Py_INCREF(device);
        key = PyTuple_Pack(5, op, srcs, arg, args[3], args[4]);
    } else {
        device = nargs == 6 ? args[5] : Py_None;
        Py_INCREF(device);
        if (op == g_const) {
            /* constants by type and spelling: 0.0 == -0.0 and 1 == 1.0 == True */
            PyObject *r = PyObject_Repr(arg);
            karg = r ? PyTuple_Pack(2, (PyObject *)Py_TYPE(arg), r) : NULL;
            Py_XDECREF(r);
        } else {
            karg = arg;
            Py_INCREF(karg);
        }
        key = karg ? PyTuple_Pack(6, op, srcs, karg, args[3], args[4], device) : NULL;
        Py_XDECREF(karg);
    }
    if (key == NULL) {
        Py_DECREF(device);
        return NULL;
    }
    PyObject *ref = PyDict_GetItemWithError(g_cache, key);   /* borrowed */
    if (ref != NULL && PyWeakref_Check(ref)) {
#if PY_VERSION_HEX >= 0x030D0000
        PyObject *node = NULL;
        if (PyWeakref_GetRef(ref, &node) > 0) {
            Py_DECREF(key);
            Py_DECREF(device);
            return node;
        }
        PyErr_Clear();
#else
        PyObject *node = PyWeakref_GET_OBJECT(ref);
        if (node != Py_None && Py_REFCNT(node) > 0) {
            Py_INCREF(node);
            Py_DECREF(key);
            Py_DECREF(device);
            return node;
        }
#endif
    } else if (ref == NULL && PyErr_Occurred()) {
        Py_DECREF(key);
        Py_DECREF(device);
        return NULL;
    }
    if (PyTuple_GET_SIZE(srcs) != 0) {   /* (a node found above was checked when made) */
        Py_DECREF(device);
        device = common_device(srcs, op == g_function_op ? 1 : PyTuple_GET_SIZE(srcs));
        if (device == NULL) {
            Py_DECREF(key);
            return NULL;
        }
    }
    PyObject *node = g_node_type->tp_alloc(g_node_type, 0);
    PyObject *id = NULL, *newref = NULL;
    if (node == NULL)
        goto fail;
    for (int i = 0; i < 5; i++)
        if (set_slot(g_node_slots[i], node, args[i]) < 0)
            goto fail;
    if (set_slot(g_node_slots[5], node, device) < 0)
        goto fail;
    {   /* the weakref type's __new__ does the work; its __init__ only checks arguments */
        PyObject *rargs = PyTuple_Pack(2, node, g_callback);
        newref = rargs ? g_ref_type->tp_new(g_ref_type, rargs, NULL) : NULL;
        Py_XDECREF(rargs);
    }
    id = newref ? PyLong_FromVoidPtr(node) : NULL;
    if (id == NULL || set_slot(g_ref_key, newref, key) < 0 || set_slot(g_ref_id, newref, id) < 0 ||
        PyDict_SetItem(g_cache, key, newref) < 0)
        goto fail;
    /* A node cannot be part of a reference cycle: its slots hold its op, sources made
     * before it, and immutable static data. Neither can its cache key or weakref. So the
     * cyclic collector need not traverse any of them (deallocation untracks twice safely). */
    PyObject_GC_UnTrack(node);
    PyObject_GC_UnTrack(key);
    PyObject_GC_UnTrack(newref);
    Py_DECREF(id);
    Py_DECREF(newref);
    Py_DECREF(key);
    Py_DECREF(device);
    return node;
fail:
    Py_XDECREF(id);
    Py_XDECREF(newref);
    Py_XDECREF(node);
    Py_DECREF(key);
    Py_DECREF(device);
    return NULL;
}

/* weakref callback: errors are cleared (a callback has no caller to report to) */
static PyObject *dead(PyObject *self, PyObject *ref) {
    if (g_cache == NULL)
        Py_RETURN_NONE;
    /* the cache entry may hold the only reference to ref, and the caller holds none */
    Py_INCREF(ref);
    PyObject *key = get(ref, s_key);
    if (key != NULL) {
        PyObject *live = PyDict_GetItemWithError(g_cache, key);   /* borrowed */
        if (live == ref && PyDict_DelItem(g_cache, key) < 0)
            PyErr_Clear();
        Py_DECREF(key);
    }
    PyErr_Clear();
    PyObject *id = get(ref, s_id);
    Py_DECREF(ref);
    if (id == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    /* (the length is read each time and the table held: dropping values may run code) */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(g_tables); i++) {
        PyObject *t = PyList_GET_ITEM(g_tables, i);
        if (PyDict_Check(t) && PyDict_GET_SIZE(t) != 0) {
            Py_INCREF(t);
            discard(t, id);
            Py_DECREF(t);
        }
    }
    Py_DECREF(id);
    Py_RETURN_NONE;
}

/* toposort(outputs, is_leaf): graph.toposort. Frames hold a node (borrowed: the outputs'
 * graph keeps it alive) and its sources (owned; NULL for a leaf). */
static PyObject *toposort(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "toposort takes outputs and is_leaf (or None)");
        return NULL;
    }
    PyObject *is_leaf = args[1] == Py_None ? NULL : args[1];
    PyObject *outputs = PySequence_Tuple(args[0]);
    if (outputs == NULL)
        return NULL;
    PyObject *seen = PySet_New(NULL), *order = PyList_New(0), *result = NULL;
    Py_ssize_t cap = 256, sp = 0;
    Frame *stack = PyMem_Malloc(cap * sizeof(Frame));
    if (stack == NULL)
        PyErr_NoMemory();
    if (seen == NULL || order == NULL || stack == NULL)
        goto done;
    Py_ssize_t n_out = PyTuple_GET_SIZE(outputs);
    PyObject **outs = &PyTuple_GET_ITEM(outputs, 0);
    for (Py_ssize_t o = 0; o < n_out; o++) {
        PyObject *n = outs[o];
        for (;;) {   /* push n (an output, then each source not seen) */
            int had = PySet_Contains(seen, n);
            if (had < 0 || (had == 0 && PySet_Add(seen, n) < 0))
                goto done;
            if (had == 0) {
                PyObject *srcs = NULL;
                int leaf = 0;
                if (is_leaf != NULL) {
                    PyObject *r = PyObject_CallOneArg(is_leaf, n);
                    if (r == NULL || (leaf = PyObject_IsTrue(r)) < 0) {
                        Py_XDECREF(r);
                        goto done;
                    }
                    Py_DECREF(r);
                }
                if (!leaf) {
                    srcs = get(n, s_srcs);
                    if (srcs == NULL)
                        goto done;
                    if (!PyTuple_Check(srcs)) {
                        Py_DECREF(srcs);
                        PyErr_SetString(PyExc_TypeError, "a node's srcs must be a tuple");
                        goto done;
                    }
                }
                if (reserve(&stack, &cap, sp + 1, sizeof *stack) < 0) {
                    Py_XDECREF(srcs);
                    goto done;
                }
                stack[sp++] = (Frame){n, NULL, srcs, 0};
            }
            /* the next source of the top frame not seen yet, or pop the frame */
            n = NULL;
            while (sp > 0 && n == NULL) {
                Frame *f = &stack[sp - 1];
                while (f->srcs != NULL && f->i < PyTuple_GET_SIZE(f->srcs)) {
                    PyObject *s = PyTuple_GET_ITEM(f->srcs, f->i++);
                    int has = PySet_Contains(seen, s);
                    if (has < 0)
                        goto done;
                    if (!has) {
                        n = s;
                        break;
                    }
                }
                if (n == NULL) {
                    if (PyList_Append(order, f->node) < 0)
                        goto done;
                    Py_CLEAR(f->srcs);
                    sp--;
                }
            }
            if (n == NULL)
                break;
        }
    }
    result = order;
    order = NULL;
done:
    while (sp > 0) {
        sp--;
        Py_XDECREF(stack[sp].srcs);
    }
    PyMem_Free(stack);
    Py_XDECREF(seen);
    Py_XDECREF(order);
    Py_DECREF(outputs);
    return result;
}

