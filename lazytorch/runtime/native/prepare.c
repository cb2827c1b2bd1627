/* prepare.c: realize's walk (realize.prepare_py) */
static PyObject *g_realized, *g_buffer, *g_detach, *g_is_constant, *g_make_node, *g_inherit;
static PyObject *g_function;

static PyObject *setup(PyObject *self, PyObject *args) {
    PyObject *a[8];
    if (!PyArg_ParseTuple(args, "O!OOOOOOO", &PyDict_Type, &a[0], &a[1], &a[2], &a[3], &a[4],
                          &a[5], &a[6], &a[7]))
        return NULL;
    PyObject **slots[8] = {&g_realized, &g_buffer, &g_const, &g_detach, &g_is_constant,
                           &g_make_node, &g_inherit, &g_function};
    for (int i = 0; i < 8; i++)
        keep(slots[i], a[i]);
    Py_RETURN_NONE;
}

/* num[n] = len(key); key.append(entry) (steals entry). The entry (and the tuple of source
 * numbers inside it) holds only static data made before it, so it cannot be in a cycle: the
 * collector need not walk a key of a hundred thousand entries on every collection the walk's
 * own allocations trigger (it did, and made a large graph's walk superlinear). */
static int number(PyObject *num, PyObject *key, PyObject *order, PyObject *n, PyObject *entry) {
    if (entry == NULL)
        return -1;
    PyObject_GC_UnTrack(entry);
    if (!PyUnicode_Check(PyTuple_GET_ITEM(entry, 0)))   /* not a buffer's: sources' numbers */
        PyObject_GC_UnTrack(PyTuple_GET_ITEM(entry, 4));
    PyObject *k = PyLong_FromSsize_t(PyList_GET_SIZE(key));
    int err = k == NULL || PyDict_SetItem(num, n, k) < 0 || PyList_Append(key, entry) < 0 ||
              PyList_Append(order, n) < 0;
    Py_XDECREF(k);
    Py_DECREF(entry);
    return err ? -1 : 0;
}

/* (buffer node or NULL): the buffer standing for n, if n is a leaf of the walk */
static PyObject *leaf_of(PyObject *n, PyObject *op) {
    if (op == g_buffer) {
        Py_INCREF(n);
        return n;
    }
    PyObject *id = PyLong_FromVoidPtr(n);
    if (id == NULL)
        return NULL;
    PyObject *b = PyDict_GetItemWithError(g_realized, id);   /* the buffer node */
    Py_DECREF(id);
    if (b == NULL)
        return NULL;
    Py_INCREF(b);   /* is_constant runs Python code, which may replace or drop the entry */
    PyObject *c = PyObject_CallOneArg(g_is_constant, n);
    int constant = c == NULL ? -1 : PyObject_IsTrue(c);
    Py_XDECREF(c);
    if (constant != 0)
        Py_CLEAR(b);
    return b;
}

static PyObject *buffer_entry(PyObject *b, PyObject *pos, PyObject *inputs) {
    PyObject *p = PyDict_GetItemWithError(pos, b);
    if (p == NULL) {
        if (PyErr_Occurred())
            return NULL;
        p = PyLong_FromSsize_t(PyList_GET_SIZE(inputs));
        if (p == NULL || PyDict_SetItem(pos, b, p) < 0 || PyList_Append(inputs, b) < 0) {
            Py_XDECREF(p);
            return NULL;
        }
        Py_DECREF(p);
    }
    PyObject *shape = get(b, s_shape);
    PyObject *dtype = shape ? get(b, s_dtype) : NULL;
    PyObject *name = dtype ? get(dtype, s_name) : NULL;
    PyObject *device = name ? device_of(b) : NULL;
    PyObject *entry = device ? PyTuple_Pack(5, s_B, p, shape, name, device) : NULL;
    Py_XDECREF(shape);
    Py_XDECREF(dtype);
    Py_XDECREF(name);
    Py_XDECREF(device);
    return entry;
}

/* every source is numbered: rebuild n if a source was substituted, and number it */
static int finish(Frame *f, PyObject *new, PyObject *num, PyObject *key, PyObject *order) {
    PyObject *n = f->node, *srcs = f->srcs, *op = f->op;
    Py_ssize_t ns = PyTuple_GET_SIZE(srcs);
    /* `new` holds only the nodes that change (substituted or rebuilt): most stay as they are */
    PyObject *nums = PyTuple_New(ns), *rebuilt = NULL;
    PyObject *arg = NULL, *shape = NULL, *dtype = NULL, *name = NULL, *use = NULL;
    int changed = 0, rc = -1;
    if (nums == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < ns; i++) {
        PyObject *s = PyTuple_GET_ITEM(srcs, i);
        PyObject *k = PyDict_GetItemWithError(num, s);
        if (k == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_RuntimeError, "prepare: a source was not walked");
            goto done;
        }
        Py_INCREF(k);
        PyTuple_SET_ITEM(nums, i, k);
        if (PyDict_GET_SIZE(new) != 0 && !changed) {
            PyObject *m = PyDict_GetItemWithError(new, s);
            if (m == NULL && PyErr_Occurred())
                goto done;
            changed = m != NULL;
        }
    }
    if (changed) {
        rebuilt = PyTuple_New(ns);
        if (rebuilt == NULL)
            goto done;
        for (Py_ssize_t i = 0; i < ns; i++) {
            PyObject *s = PyTuple_GET_ITEM(srcs, i);
            PyObject *m = PyDict_GetItemWithError(new, s);
            if (m == NULL) {
                if (PyErr_Occurred())
                    goto done;
                m = s;
            }
            Py_INCREF(m);
            PyTuple_SET_ITEM(rebuilt, i, m);
        }
    }
    arg = get(n, s_arg);
    shape = arg ? get(n, s_shape) : NULL;
    dtype = shape ? get(n, s_dtype) : NULL;
    name = dtype ? get(dtype, s_name) : NULL;
    if (name == NULL)
        goto done;
    if (changed) {
        use = PyObject_CallFunctionObjArgs(g_make_node, op, rebuilt, arg, shape, dtype, NULL);
        if (use == NULL)
            goto done;
        PyObject *r = PyObject_CallFunctionObjArgs(g_inherit, use, n, NULL);
        if (r == NULL)
            goto done;
        Py_DECREF(r);
        if (PyDict_SetItem(new, n, use) < 0)
            goto done;
    }
    PyObject *karg;
    if (op == g_const) {   /* by spelling, and where it is placed */
        PyObject *r = PyObject_Repr(arg), *device = r ? device_of(n) : NULL;
        karg = device ? PyTuple_Pack(2, r, device) : NULL;
        Py_XDECREF(r);
        Py_XDECREF(device);
    } else if (op == g_detach || op == g_function) {   /* a leaf's or an application's id */
        karg = Py_None;
        Py_INCREF(karg);
    } else {
        karg = arg;
        Py_INCREF(karg);
    }
    if (karg == NULL)
        goto done;
    PyObject *entry = PyTuple_Pack(5, op, karg, shape, name, nums);
    Py_DECREF(karg);
    rc = number(num, key, order, n, entry);
done:
    Py_XDECREF(nums);
    Py_XDECREF(rebuilt);
    Py_XDECREF(arg);
    Py_XDECREF(shape);
    Py_XDECREF(dtype);
    Py_XDECREF(name);
    Py_XDECREF(use);
    return rc;
}

static PyObject *prepare(PyObject *self, PyObject *arg) {
    if (g_realized == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "native.setup() was not called");
        return NULL;
    }
    PyObject *outputs = PySequence_Tuple(arg);
    if (outputs == NULL)
        return NULL;
    PyObject *new = PyDict_New(), *num = PyDict_New(), *pos = PyDict_New();
    PyObject *inputs = PyList_New(0), *key = PyList_New(0), *order = PyList_New(0);
    PyObject *result = NULL;
    Py_ssize_t cap = 256, sp = 0;
    Frame *stack = PyMem_Malloc(cap * sizeof(Frame));
    if (stack == NULL)
        PyErr_NoMemory();
    if (!new || !num || !pos || !inputs || !key || !order || !stack)
        goto fail;
    Py_ssize_t n_out = PyTuple_GET_SIZE(outputs);
    PyObject **outs = &PyTuple_GET_ITEM(outputs, 0);
    for (Py_ssize_t o = 0; o < n_out; o++) {
        int seen = PyDict_Contains(num, outs[o]);
        if (seen < 0)
            goto fail;
        if (seen)
            continue;
        stack[sp++] = (Frame){outs[o], NULL, NULL, 0};
        while (sp > 0) {
            Frame *f = &stack[sp - 1];
            if (f->op == NULL) {
                PyObject *n = f->node;
                f->op = get(n, s_op);
                if (f->op == NULL)
                    goto fail;
                PyObject *b = leaf_of(n, f->op);
                if (b == NULL && PyErr_Occurred())
                    goto fail;
                if (b != NULL) {
                    int err = (b != n && PyDict_SetItem(new, n, b) < 0) ||
                              number(num, key, order, n, buffer_entry(b, pos, inputs)) < 0;
                    Py_DECREF(b);
                    if (err)
                        goto fail;
                    Py_CLEAR(f->op);
                    sp--;
                    continue;
                }
                f->srcs = get(n, s_srcs);
                if (f->srcs == NULL)
                    goto fail;
                if (!PyTuple_Check(f->srcs)) {
                    PyErr_SetString(PyExc_TypeError, "a node's srcs must be a tuple");
                    goto fail;
                }
            }
            int pushed = 0;
            while (f->i < PyTuple_GET_SIZE(f->srcs)) {
                PyObject *s = PyTuple_GET_ITEM(f->srcs, f->i++);
                int seen_s = PyDict_Contains(num, s);
                if (seen_s < 0)
                    goto fail;
                if (!seen_s) {
                    if (reserve(&stack, &cap, sp + 1, sizeof *stack) < 0)
                        goto fail;
                    f = &stack[sp - 1];   /* (the stack may have moved) */
                    stack[sp++] = (Frame){s, NULL, NULL, 0};
                    pushed = 1;
                    break;
                }
            }
            if (pushed)
                continue;
            if (finish(f, new, num, key, order) < 0)
                goto fail;
            Py_CLEAR(f->op);
            Py_CLEAR(f->srcs);
            sp--;
        }
    }
    PyObject *last = PyTuple_New(n_out), *new_outs = PyList_New(n_out);
    if (last == NULL || new_outs == NULL) {
        Py_XDECREF(last);
        Py_XDECREF(new_outs);
        goto fail;
    }
    for (Py_ssize_t o = 0; o < n_out; o++) {
        PyObject *k = PyDict_GetItem(num, outs[o]), *m = PyDict_GetItem(new, outs[o]);
        if (m == NULL)
            m = outs[o];
        Py_INCREF(k);
        PyTuple_SET_ITEM(last, o, k);
        Py_INCREF(m);
        PyList_SET_ITEM(new_outs, o, m);
    }
    int err = PyList_Append(key, last);
    Py_DECREF(last);
    PyObject *key_t = err ? NULL : PyList_AsTuple(key);
    if (key_t == NULL) {
        Py_DECREF(new_outs);
        goto fail;
    }
    /* what stands for each walked node: its buffer or rebuilt node where it changed */
    Py_ssize_t n_order = PyList_GET_SIZE(order);
    PyObject *order_new = PyList_New(n_order);
    if (order_new == NULL) {
        Py_DECREF(new_outs);
        Py_DECREF(key_t);
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n_order; i++) {
        PyObject *n = PyList_GET_ITEM(order, i), *m = PyDict_GetItem(new, n);
        m = m == NULL ? n : m;
        Py_INCREF(m);
        PyList_SET_ITEM(order_new, i, m);
    }
    result = PyTuple_Pack(5, new_outs, inputs, key_t, order, order_new);
    Py_DECREF(new_outs);
    Py_DECREF(key_t);
    Py_DECREF(order_new);
fail:
    while (sp > 0) {
        sp--;
        Py_XDECREF(stack[sp].op);
        Py_XDECREF(stack[sp].srcs);
    }
    PyMem_Free(stack);
    Py_XDECREF(new);
    Py_XDECREF(num);
    Py_XDECREF(pos);
    Py_XDECREF(inputs);
    Py_XDECREF(key);
    Py_XDECREF(order);
    Py_DECREF(outputs);
    return result;
}

/* held(order, order_new, key, free_ops): live.held_py. The references a walked node has
 * beyond those its graph accounts for (its consumers' srcs, its rebuilt consumers' srcs, the
 * two lists) come from outside the graph: a live tensor or a pending graph holds it. */
static PyObject *held(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyList_Check(args[0]) || !PyList_Check(args[1]) ||
        !PyTuple_Check(args[2]) || !PyAnySet_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "held(order: list, order_new: list, key: tuple, "
                                         "free_ops: set)");
        return NULL;
    }
    PyObject *order = args[0], *order_new = args[1], *key = args[2], *free_ops = args[3];
    Py_ssize_t size = PyList_GET_SIZE(order);
    if (PyList_GET_SIZE(order_new) != size || PyTuple_GET_SIZE(key) != size + 1) {
        PyErr_SetString(PyExc_ValueError, "held: order, order_new and key disagree");
        return NULL;
    }
    Py_ssize_t *refs = PyMem_Calloc(size + 1, sizeof(Py_ssize_t));
    char *flags = PyMem_Calloc(size + 1, 1);   /* 1 changed, 2 free, 4 output */
    PyObject *found = PyList_New(0);
    if (refs == NULL || flags == NULL || found == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    PyObject *outs = PyTuple_GET_ITEM(key, size);
    if (!PyTuple_Check(outs))
        goto bad;
    for (Py_ssize_t o = 0; o < PyTuple_GET_SIZE(outs); o++) {
        Py_ssize_t k = PyLong_AsSsize_t(PyTuple_GET_ITEM(outs, o));
        if (k < 0 || k >= size)
            goto bad;
        flags[k] |= 4;
    }
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *e = PyTuple_GET_ITEM(key, i);
        if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != 5)
            goto bad;
        int changed = PyList_GET_ITEM(order_new, i) != PyList_GET_ITEM(order, i);
        if (changed)
            flags[i] |= 1;
        if (PyUnicode_Check(PyTuple_GET_ITEM(e, 0))) {     /* a buffer */
            flags[i] |= 2;
            continue;
        }
        PyObject *srcs = PyTuple_GET_ITEM(e, 4);
        if (!PyTuple_Check(srcs))
            goto bad;
        int is_free = PySet_Contains(free_ops, PyTuple_GET_ITEM(e, 0));
        if (is_free < 0)
            goto fail;
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(srcs); j++) {
            Py_ssize_t s = PyLong_AsSsize_t(PyTuple_GET_ITEM(srcs, j));
            if (s < 0 || s >= i)
                goto bad;
            if (!(flags[s] & 2))
                is_free = 0;
            refs[s] += 1 + (changed && !(flags[s] & 1));
        }
        if (is_free)
            flags[i] |= 2;
    }
    for (Py_ssize_t i = 0; i < size; i++) {
        if (flags[i] & 6)
            continue;
        Py_ssize_t own = (flags[i] & 1) ? 1 : 2;
        if (Py_REFCNT(PyList_GET_ITEM(order, i)) - own > refs[i]) {
            PyObject *k = PyLong_FromSsize_t(i);
            if (k == NULL || PyList_Append(found, k) < 0) {
                Py_XDECREF(k);
                goto fail;
            }
            Py_DECREF(k);
        }
    }
    PyMem_Free(refs);
    PyMem_Free(flags);
    return found;
bad:
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "held: a key entry is not what prepare makes");
fail:
    PyMem_Free(refs);
    PyMem_Free(flags);
    Py_XDECREF(found);
    return NULL;
}


/* address(array): the address of a C-contiguous buffer's first byte (memory.address_of_py,
 * without the ctypes object numpy makes for .ctypes.data) */
static PyObject *address(PyObject *self, PyObject *arr) {
    Py_buffer view;
    if (PyObject_GetBuffer(arr, &view, PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    PyObject *r = PyLong_FromVoidPtr(view.buf);
    PyBuffer_Release(&view);
    return r;
}
