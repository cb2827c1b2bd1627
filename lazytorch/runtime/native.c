/* The host side's two hottest loops, compiled like the kernels (see native.py):
 *
 *   prepare(outputs)  realize's walk: substitute realized nodes by their buffers and build the
 *                     plan-cache key, exactly as realize.prepare_py does;
 *   dead(ref)         the hash-consing table's weakref callback: drop the dead node's cache
 *                     entry and its side-table entries, as graph._dead does.
 *
 * The Python versions are the reference; tests compare the two on the same graphs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <structmember.h>

static PyObject *g_cache, *g_tables, *g_realized, *g_buffer, *g_const, *g_detach;
static PyObject *g_is_constant, *g_make_node, *g_inherit;
static PyObject *s_op, *s_srcs, *s_arg, *s_shape, *s_dtype, *s_name, *s_key, *s_id, *s_B;

/* Slots read straight from the object for the types fast_slots() registered (a generic
 * attribute lookup costs ~300 instructions; the table is a handful of entries). The names
 * are the interned s_* strings, compared by address. */
typedef struct {
    PyTypeObject *type;
    PyObject *name;
    Py_ssize_t offset;
} FastSlot;
static FastSlot g_fast[16];
static int g_n_fast;

/* o.name as a new reference */
static inline PyObject *get(PyObject *o, PyObject *name) {
    PyTypeObject *t = Py_TYPE(o);
    for (int i = 0; i < g_n_fast; i++) {
        if (g_fast[i].type == t && g_fast[i].name == name) {
            PyObject *v = *(PyObject **)((char *)o + g_fast[i].offset);
            if (v == NULL)
                break;   /* unset: let the generic lookup raise */
            Py_INCREF(v);
            return v;
        }
    }
    return PyObject_GetAttr(o, name);
}

/* dict helpers hashing the key once; the private known-hash calls exist through 3.12 */
#if PY_VERSION_HEX < 0x030D0000
#define GET_KNOWN(d, k, h) _PyDict_GetItem_KnownHash(d, k, h)
#define SET_KNOWN(d, k, v, h) _PyDict_SetItem_KnownHash(d, k, v, h)
#define DEL_KNOWN(d, k, h) _PyDict_DelItem_KnownHash(d, k, h)
#else
#define GET_KNOWN(d, k, h) PyDict_GetItemWithError(d, k)
#define SET_KNOWN(d, k, v, h) PyDict_SetItem(d, k, v)
#define DEL_KNOWN(d, k, h) PyDict_DelItem(d, k)
#endif

/* drop key from d if present, in one lookup (errors are cleared: used by the callback) */
static void discard(PyObject *d, PyObject *key) {
#if PY_VERSION_HEX < 0x030D0000
    PyObject *v = _PyDict_Pop(d, key, Py_None);
    Py_XDECREF(v);
#else
    PyObject *v = NULL;
    PyDict_Pop(d, key, &v);
    Py_XDECREF(v);
#endif
    PyErr_Clear();
}

static int keep(PyObject **slot, PyObject *value) {
    Py_INCREF(value);
    Py_XSETREF(*slot, value);
    return 0;
}

static PyObject *interned(PyObject *name) {
    PyObject *known[] = {s_op, s_srcs, s_arg, s_shape, s_dtype, s_name, s_key, s_id};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (PyUnicode_Compare(name, known[i]) == 0)
            return known[i];
    return NULL;
}

/* fast_slots(type, names): read these __slots__ of exactly this type directly */
static PyObject *fast_slots(PyObject *self, PyObject *args) {
    PyObject *type, *names;
    if (!PyArg_ParseTuple(args, "O!O!", &PyType_Type, &type, &PyTuple_Type, &names))
        return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        PyObject *key = PyUnicode_Check(name) ? interned(name) : NULL;
        PyObject *d = ((PyTypeObject *)type)->tp_dict;
        PyObject *descr = key && d ? PyDict_GetItemWithError(d, name) : NULL;
        if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type) ||
            PyDescr_TYPE(descr) != (PyTypeObject *)type ||
            ((PyMemberDescrObject *)descr)->d_member->type != T_OBJECT_EX) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_TypeError, "%R is not an object slot of %R", name, type);
            return NULL;
        }
        int j = 0;
        while (j < g_n_fast && !(g_fast[j].type == (PyTypeObject *)type && g_fast[j].name == key))
            j++;
        if (j == g_n_fast) {
            if (g_n_fast == (int)(sizeof g_fast / sizeof *g_fast)) {
                PyErr_SetString(PyExc_ValueError, "too many fast slots");
                return NULL;
            }
            Py_INCREF(type);
            g_n_fast++;
        }
        g_fast[j] = (FastSlot){(PyTypeObject *)type, key,
                               ((PyMemberDescrObject *)descr)->d_member->offset};
    }
    Py_RETURN_NONE;
}

/* new_node's state: the Node type, its slots' setters, the cache's weakref type and its
 * slots' setters, and the callback each entry's weakref gets */
static PyTypeObject *g_node_type, *g_ref_type;
static PyObject *g_node_slots[5], *g_ref_key, *g_ref_id, *g_callback;

static PyObject *setup_graph(PyObject *self, PyObject *args) {
    PyObject *cache, *tables, *node_type, *ref_type, *node_slots, *ref_slots, *callback, *cnst;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!O!OO", &PyDict_Type, &cache, &PyList_Type, &tables,
                          &PyType_Type, &node_type, &PyType_Type, &ref_type, &PyTuple_Type,
                          &node_slots, &PyTuple_Type, &ref_slots, &callback, &cnst))
        return NULL;
    if (PyTuple_GET_SIZE(node_slots) != 5 || PyTuple_GET_SIZE(ref_slots) != 2) {
        PyErr_SetString(PyExc_ValueError, "5 node slots and 2 weakref slots");
        return NULL;
    }
    PyObject *all[7];
    for (int i = 0; i < 5; i++)
        all[i] = PyTuple_GET_ITEM(node_slots, i);
    all[5] = PyTuple_GET_ITEM(ref_slots, 0);
    all[6] = PyTuple_GET_ITEM(ref_slots, 1);
    for (int i = 0; i < 7; i++)
        if (Py_TYPE(all[i])->tp_descr_set == NULL) {
            PyErr_SetString(PyExc_TypeError, "slots must be settable descriptors");
            return NULL;
        }
    keep(&g_cache, cache);
    keep(&g_tables, tables);
    keep((PyObject **)&g_node_type, node_type);
    keep((PyObject **)&g_ref_type, ref_type);
    for (int i = 0; i < 5; i++)
        keep(&g_node_slots[i], all[i]);
    keep(&g_ref_key, all[5]);
    keep(&g_ref_id, all[6]);
    keep(&g_callback, callback);
    keep(&g_const, cnst);
    Py_RETURN_NONE;
}

static inline int set_slot(PyObject *descr, PyObject *obj, PyObject *value) {
    return Py_TYPE(descr)->tp_descr_set(descr, obj, value);
}

/* new_node(op, srcs, arg, shape, dtype): graph.new_node, the hash-consed constructor */
static PyObject *new_node(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "new_node takes op, srcs, arg, shape, dtype");
        return NULL;
    }
    if (g_node_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "native.setup_graph() was not called");
        return NULL;
    }
    PyObject *op = args[0], *arg = args[2], *karg;
    if (op == g_const) {
        /* constants by type and spelling: 0.0 == -0.0 and 1 == 1.0 == True */
        PyObject *r = PyObject_Repr(arg);
        if (r == NULL)
            return NULL;
        karg = PyTuple_Pack(2, (PyObject *)Py_TYPE(arg), r);
        Py_DECREF(r);
        if (karg == NULL)
            return NULL;
    } else {
        karg = arg;
        Py_INCREF(karg);
    }
    PyObject *key = PyTuple_Pack(5, op, args[1], karg, args[3], args[4]);
    Py_DECREF(karg);
    if (key == NULL)
        return NULL;
    Py_hash_t h = PyObject_Hash(key);
    if (h == -1) {
        Py_DECREF(key);
        return NULL;
    }
    PyObject *ref = GET_KNOWN(g_cache, key, h);   /* borrowed */
    if (ref != NULL && PyWeakref_Check(ref)) {
#if PY_VERSION_HEX >= 0x030D0000
        PyObject *node = NULL;
        if (PyWeakref_GetRef(ref, &node) > 0) {
            Py_DECREF(key);
            return node;
        }
        PyErr_Clear();
#else
        PyObject *node = PyWeakref_GET_OBJECT(ref);
        if (node != Py_None && Py_REFCNT(node) > 0) {
            Py_INCREF(node);
            Py_DECREF(key);
            return node;
        }
#endif
    } else if (ref == NULL && PyErr_Occurred()) {
        Py_DECREF(key);
        return NULL;
    }
    PyObject *node = g_node_type->tp_alloc(g_node_type, 0);
    PyObject *id = NULL, *newref = NULL;
    if (node == NULL)
        goto fail;
    for (int i = 0; i < 5; i++)
        if (set_slot(g_node_slots[i], node, args[i]) < 0)
            goto fail;
    {   /* the weakref type's __new__ does the work; its __init__ only checks arguments */
        PyObject *rargs = PyTuple_Pack(2, node, g_callback);
        newref = rargs ? g_ref_type->tp_new(g_ref_type, rargs, NULL) : NULL;
        Py_XDECREF(rargs);
    }
    id = newref ? PyLong_FromVoidPtr(node) : NULL;
    if (id == NULL || set_slot(g_ref_key, newref, key) < 0 || set_slot(g_ref_id, newref, id) < 0 ||
        SET_KNOWN(g_cache, key, newref, h) < 0)
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
    return node;
fail:
    Py_XDECREF(id);
    Py_XDECREF(newref);
    Py_XDECREF(node);
    Py_DECREF(key);
    return NULL;
}

static PyObject *setup(PyObject *self, PyObject *args) {
    PyObject *a[7];
    if (!PyArg_ParseTuple(args, "O!OOOOOO", &PyDict_Type, &a[0], &a[1], &a[2], &a[3], &a[4],
                          &a[5], &a[6]))
        return NULL;
    PyObject **slots[7] = {&g_realized, &g_buffer, &g_const, &g_detach, &g_is_constant,
                           &g_make_node, &g_inherit};
    for (int i = 0; i < 7; i++)
        keep(slots[i], a[i]);
    Py_RETURN_NONE;
}

/* record_from's state: sites by id(node), code classification by id(code), the Python
 * classifier for codes not seen yet */
static PyObject *g_sites, *g_codes, *g_classify, *g_buffer_op, *s_f_lasti;

static PyObject *setup_sites(PyObject *self, PyObject *args) {
    PyObject *sites, *codes, *classify, *buffer;
    if (!PyArg_ParseTuple(args, "O!O!OO", &PyDict_Type, &sites, &PyDict_Type, &codes, &classify,
                          &buffer))
        return NULL;
    keep(&g_sites, sites);
    keep(&g_codes, codes);
    keep(&g_classify, classify);
    keep(&g_buffer_op, buffer);
    Py_RETURN_NONE;
}

/* sites._walk: (code, offset, api) of the first frame outside the package, or None */
static PyObject *walk(PyObject *frame, PyObject *api) {
    PyFrameObject *f = (PyFrameObject *)frame;
    Py_INCREF(f);
    Py_INCREF(api);
    while (f != NULL) {
        PyCodeObject *code = PyFrame_GetCode(f);
        PyObject *cid = PyLong_FromVoidPtr(code);
        PyObject *what = NULL;
        if (cid != NULL) {
            PyObject *e = PyDict_GetItemWithError(g_codes, cid);
            if (e != NULL && PyTuple_Check(e) && PyTuple_GET_SIZE(e) == 2) {
                what = PyTuple_GET_ITEM(e, 1);
                Py_INCREF(what);
            } else if (!PyErr_Occurred()) {
                what = PyObject_CallOneArg(g_classify, (PyObject *)code);
            }
            Py_DECREF(cid);
        }
        if (what == NULL) {
            Py_DECREF(code);
            Py_DECREF(f);
            Py_DECREF(api);
            return NULL;
        }
        if (what == Py_None) {
            Py_DECREF(what);
#if PY_VERSION_HEX >= 0x030B0000
            PyObject *lasti = PyLong_FromLong(PyFrame_GetLasti(f));   /* == f.f_lasti */
#else
            PyObject *lasti = PyObject_GetAttr((PyObject *)f, s_f_lasti);
#endif
            PyObject *site = lasti ? PyTuple_Pack(3, (PyObject *)code, lasti, api) : NULL;
            if (site != NULL)
                PyObject_GC_UnTrack(site);   /* (a code object, an int and a str) */
            Py_XDECREF(lasti);
            Py_DECREF(code);
            Py_DECREF(f);
            Py_DECREF(api);
            return site;
        }
        Py_DECREF(code);
        int named = PyObject_IsTrue(what);
        if (named < 0) {
            Py_DECREF(what);
            Py_DECREF(f);
            Py_DECREF(api);
            return NULL;
        }
        if (named > 0)
            Py_SETREF(api, what);
        else
            Py_DECREF(what);
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    Py_DECREF(api);
    Py_RETURN_NONE;
}

/* does node need a site: not in the table and not a buffer (-1: error) */
static int unsited(PyObject *n) {
    PyObject *id = PyLong_FromVoidPtr(n);
    if (id == NULL)
        return -1;
    int has = PyDict_Contains(g_sites, id);
    Py_DECREF(id);
    if (has != 0)
        return has < 0 ? -1 : 0;
    PyObject *op = get(n, s_op);
    if (op == NULL)
        return -1;
    Py_DECREF(op);
    return op != g_buffer_op;
}

static int set_site(PyObject *n, PyObject *site) {
    PyObject *id = PyLong_FromVoidPtr(n);
    int rc = id == NULL ? -1 : PyDict_SetItem(g_sites, id, site);
    Py_XDECREF(id);
    return rc;
}

/* record_from(node, frame, api): sites.record_from */
static PyObject *record_from(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyFrame_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "record_from takes a node, a frame and an api name");
        return NULL;
    }
    if (g_sites == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "native.setup_sites() was not called");
        return NULL;
    }
    PyObject *node = args[0];
    PyObject *site = walk(args[1], args[2]);
    if (site == NULL || site == Py_None)
        return site;
    PyObject *srcs = NULL, *stack = NULL, *result = NULL;
    if (set_site(node, site) < 0)
        goto done;
    srcs = get(node, s_srcs);
    if (srcs == NULL || !PyTuple_Check(srcs))
        goto done;
    int need = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(srcs) && !need; i++)
        if ((need = unsited(PyTuple_GET_ITEM(srcs, i))) < 0)
            goto done;
    /* the nodes a composite op built on the way share its line; the walk stops at nodes
     * that have one, so each is visited once */
    if (need) {
        stack = PySequence_List(srcs);
        if (stack == NULL)
            goto done;
        while (PyList_GET_SIZE(stack) > 0) {
            Py_ssize_t last = PyList_GET_SIZE(stack) - 1;
            PyObject *n = PyList_GET_ITEM(stack, last);
            Py_INCREF(n);
            if (PyList_SetSlice(stack, last, last + 1, NULL) < 0) {
                Py_DECREF(n);
                goto done;
            }
            int u = unsited(n);
            PyObject *more = u > 0 ? get(n, s_srcs) : NULL;
            int bad = u < 0 || (u > 0 && (more == NULL || set_site(n, site) < 0 ||
                                          !PyTuple_Check(more)));
            if (!bad && more != NULL) {
                for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(more) && !bad; i++)
                    bad = PyList_Append(stack, PyTuple_GET_ITEM(more, i)) < 0;
            }
            Py_XDECREF(more);
            Py_DECREF(n);
            if (bad) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_TypeError, "a node's srcs must be a tuple");
                goto done;
            }
        }
    }
    result = Py_None;
    Py_INCREF(result);
done:
    if (result == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "a node's srcs must be a tuple");
    Py_XDECREF(stack);
    Py_XDECREF(srcs);
    Py_DECREF(site);
    return result;
}

/* weakref callback: errors are cleared (a callback has no caller to report to) */
static PyObject *dead(PyObject *self, PyObject *ref) {
    if (g_cache == NULL)
        Py_RETURN_NONE;
    /* the cache entry may hold the only reference to ref, and the caller holds none */
    Py_INCREF(ref);
    PyObject *key = get(ref, s_key);
    if (key != NULL) {
        Py_hash_t h = PyObject_Hash(key);
        PyObject *live = h == -1 ? NULL : GET_KNOWN(g_cache, key, h);   /* borrowed */
        if (live == ref && DEL_KNOWN(g_cache, key, h) < 0)
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

typedef struct {
    PyObject *node;   /* borrowed: kept alive by the outputs' graph */
    PyObject *op;     /* owned, NULL until the node is first seen */
    PyObject *srcs;   /* owned */
    Py_ssize_t i;     /* next source to visit */
} Frame;

/* num[n] = len(key); key.append(entry) (steals entry). The entry (and the tuple of source
 * numbers inside it) holds only static data made before it, so it cannot be in a cycle: the
 * collector need not walk a key of a hundred thousand entries on every collection the walk's
 * own allocations trigger (it did, and made a large graph's walk superlinear). */
static int number(PyObject *num, PyObject *key, PyObject *n, PyObject *entry) {
    if (entry == NULL)
        return -1;
    PyObject_GC_UnTrack(entry);
    if (PyTuple_GET_SIZE(entry) == 5)
        PyObject_GC_UnTrack(PyTuple_GET_ITEM(entry, 4));
    PyObject *k = PyLong_FromSsize_t(PyList_GET_SIZE(key));
    int err = k == NULL || PyDict_SetItem(num, n, k) < 0 || PyList_Append(key, entry) < 0;
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
    PyObject *e = PyDict_GetItemWithError(g_realized, id);   /* (weakref, buffer) */
    Py_DECREF(id);
    if (e == NULL)
        return NULL;
    Py_INCREF(e);   /* is_constant runs Python code, which may replace or drop the entry */
    PyObject *c = PyObject_CallOneArg(g_is_constant, n);
    int constant = c == NULL ? -1 : PyObject_IsTrue(c);
    Py_XDECREF(c);
    PyObject *b = NULL;
    if (constant == 0) {
        if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != 2)
            PyErr_SetString(PyExc_TypeError, "realized entries are (weakref, buffer) pairs");
        else {
            b = PyTuple_GET_ITEM(e, 1);
            Py_INCREF(b);
        }
    }
    Py_DECREF(e);
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
    PyObject *entry = name ? PyTuple_Pack(4, s_B, p, shape, name) : NULL;
    Py_XDECREF(shape);
    Py_XDECREF(dtype);
    Py_XDECREF(name);
    return entry;
}

/* every source is numbered: rebuild n if a source was substituted, and number it */
static int finish(Frame *f, PyObject *new, PyObject *num, PyObject *key) {
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
    if (op == g_const)
        karg = PyObject_Repr(arg);
    else if (op == g_detach) {
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
    rc = number(num, key, n, entry);
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
    PyObject *inputs = PyList_New(0), *key = PyList_New(0), *result = NULL;
    Py_ssize_t cap = 256, sp = 0;
    Frame *stack = PyMem_Malloc(cap * sizeof(Frame));
    if (stack == NULL)
        PyErr_NoMemory();
    if (!new || !num || !pos || !inputs || !key || !stack)
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
                              number(num, key, n, buffer_entry(b, pos, inputs)) < 0;
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
                    if (sp == cap) {
                        Frame *grown = PyMem_Realloc(stack, 2 * cap * sizeof(Frame));
                        if (grown == NULL) {
                            PyErr_NoMemory();
                            goto fail;
                        }
                        stack = grown;
                        cap *= 2;
                        f = &stack[sp - 1];
                    }
                    stack[sp++] = (Frame){s, NULL, NULL, 0};
                    pushed = 1;
                    break;
                }
            }
            if (pushed)
                continue;
            if (finish(f, new, num, key) < 0)
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
    result = PyTuple_Pack(3, new_outs, inputs, key_t);
    Py_DECREF(new_outs);
    Py_DECREF(key_t);
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
    Py_DECREF(outputs);
    return result;
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
                if (sp == cap) {
                    Frame *grown = PyMem_Realloc(stack, 2 * cap * sizeof(Frame));
                    if (grown == NULL) {
                        Py_XDECREF(srcs);
                        PyErr_NoMemory();
                        goto done;
                    }
                    stack = grown;
                    cap *= 2;
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

static PyMethodDef methods[] = {
    {"fast_slots", fast_slots, METH_VARARGS, "fast_slots(type, names): read them directly"},
    {"setup_graph", setup_graph, METH_VARARGS,
     "setup_graph(cache, tables, Node, ref type, node slots, ref slots, callback, CONST)"},
    {"new_node", (PyCFunction)(void (*)(void))new_node, METH_FASTCALL,
     "new_node(op, srcs, arg, shape, dtype): the hash-consed node"},
    {"setup", setup, METH_VARARGS,
     "setup(realized, BUFFER, CONST, DETACH, is_constant, make_node, inherit): for prepare()"},
    {"setup_sites", setup_sites, METH_VARARGS, "setup_sites(sites, codes, classify, BUFFER)"},
    {"record_from", (PyCFunction)(void (*)(void))record_from, METH_FASTCALL,
     "record_from(node, frame, api): remember the user's line that made node"},
    {"dead", dead, METH_O, "the hash-consing table's weakref callback"},
    {"toposort", (PyCFunction)(void (*)(void))toposort, METH_FASTCALL,
     "toposort(outputs, is_leaf or None): graph.toposort"},
    {"prepare", prepare, METH_O, "prepare(outputs) -> (new outputs, input buffers, key)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_lazytorch_native", NULL, -1,
                                    methods};

PyMODINIT_FUNC PyInit__lazytorch_native(void) {
    const char *names[] = {"op", "srcs", "arg", "shape", "dtype", "name", "key", "id", "B",
                           "f_lasti"};
    PyObject **slots[] = {&s_op, &s_srcs, &s_arg, &s_shape, &s_dtype, &s_name, &s_key, &s_id,
                          &s_B, &s_f_lasti};
    for (int i = 0; i < 10; i++)
        if ((*slots[i] = PyUnicode_InternFromString(names[i])) == NULL)
            return NULL;
    return PyModule_Create(&module);
}
