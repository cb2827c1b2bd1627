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

static PyObject *g_cache, *g_tables, *g_realized, *g_buffer, *g_const, *g_detach;
static PyObject *g_is_constant, *g_make_node, *g_inherit;
static PyObject *s_op, *s_srcs, *s_arg, *s_shape, *s_dtype, *s_name, *s_key, *s_id, *s_B;

static int keep(PyObject **slot, PyObject *value) {
    Py_INCREF(value);
    Py_XSETREF(*slot, value);
    return 0;
}

static PyObject *setup_graph(PyObject *self, PyObject *args) {
    PyObject *cache, *tables;
    if (!PyArg_ParseTuple(args, "O!O!", &PyDict_Type, &cache, &PyList_Type, &tables))
        return NULL;
    keep(&g_cache, cache);
    keep(&g_tables, tables);
    Py_RETURN_NONE;
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

/* weakref callback: errors are cleared (a callback has no caller to report to) */
static PyObject *dead(PyObject *self, PyObject *ref) {
    if (g_cache == NULL)
        Py_RETURN_NONE;
    /* the cache entry may hold the only reference to ref, and the caller holds none */
    Py_INCREF(ref);
    PyObject *key = PyObject_GetAttr(ref, s_key);
    if (key != NULL) {
        PyObject *live = PyDict_GetItemWithError(g_cache, key);   /* borrowed */
        if (live == ref) {
            if (PyDict_DelItem(g_cache, key) < 0)
                PyErr_Clear();
        }
        Py_DECREF(key);
    }
    PyErr_Clear();
    PyObject *id = PyObject_GetAttr(ref, s_id);
    Py_DECREF(ref);
    if (id == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    Py_ssize_t n = PyList_GET_SIZE(g_tables);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(g_tables, i);
        if (!PyDict_Check(t) || PyDict_GET_SIZE(t) == 0)
            continue;
        int has = PyDict_Contains(t, id);
        if (has > 0 && PyDict_DelItem(t, id) < 0)
            PyErr_Clear();
        else if (has < 0)
            PyErr_Clear();
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

/* num[n] = len(key); key.append(entry) (steals entry) */
static int number(PyObject *num, PyObject *key, PyObject *n, PyObject *entry) {
    if (entry == NULL)
        return -1;
    PyObject *k = PyLong_FromSsize_t(PyList_GET_SIZE(key));
    int err = k == NULL || PyDict_SetItem(num, n, k) < 0 || PyList_Append(key, entry) < 0;
    Py_XDECREF(k);
    Py_DECREF(entry);
    return err ? -1 : 0;
}

/* (buffer node or NULL): the buffer standing for n, if n is a leaf of the walk */
static PyObject *leaf_of(PyObject *n, PyObject *op) {
    if (op == g_buffer)
        return n;
    PyObject *id = PyLong_FromVoidPtr(n);
    if (id == NULL)
        return NULL;
    PyObject *e = PyDict_GetItemWithError(g_realized, id);   /* (weakref, buffer) */
    Py_DECREF(id);
    if (e == NULL)
        return NULL;
    PyObject *c = PyObject_CallOneArg(g_is_constant, n);
    if (c == NULL)
        return NULL;
    int constant = PyObject_IsTrue(c);
    Py_DECREF(c);
    if (constant)
        return NULL;   /* (-1 with an error set is caught by the caller's PyErr_Occurred) */
    if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != 2) {
        PyErr_SetString(PyExc_TypeError, "realized entries are (weakref, buffer) pairs");
        return NULL;
    }
    return PyTuple_GET_ITEM(e, 1);
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
    PyObject *shape = PyObject_GetAttr(b, s_shape);
    PyObject *dtype = shape ? PyObject_GetAttr(b, s_dtype) : NULL;
    PyObject *name = dtype ? PyObject_GetAttr(dtype, s_name) : NULL;
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
    PyObject *nums = PyTuple_New(ns), *rebuilt = PyTuple_New(ns);
    PyObject *arg = NULL, *shape = NULL, *dtype = NULL, *name = NULL, *use = NULL;
    int changed = 0, rc = -1;
    if (nums == NULL || rebuilt == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < ns; i++) {
        PyObject *s = PyTuple_GET_ITEM(srcs, i);
        PyObject *k = PyDict_GetItemWithError(num, s), *m = PyDict_GetItemWithError(new, s);
        if (k == NULL || m == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_RuntimeError, "prepare: a source was not walked");
            goto done;
        }
        Py_INCREF(k);
        PyTuple_SET_ITEM(nums, i, k);
        Py_INCREF(m);
        PyTuple_SET_ITEM(rebuilt, i, m);
        changed |= m != s;
    }
    arg = PyObject_GetAttr(n, s_arg);
    shape = arg ? PyObject_GetAttr(n, s_shape) : NULL;
    dtype = shape ? PyObject_GetAttr(n, s_dtype) : NULL;
    name = dtype ? PyObject_GetAttr(dtype, s_name) : NULL;
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
    } else {
        use = n;
        Py_INCREF(use);
    }
    if (PyDict_SetItem(new, n, use) < 0)
        goto done;
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
    PyObject *outputs = PySequence_Fast(arg, "prepare expects a sequence of nodes");
    if (outputs == NULL)
        return NULL;
    PyObject *new = PyDict_New(), *num = PyDict_New(), *pos = PyDict_New();
    PyObject *inputs = PyList_New(0), *key = PyList_New(0), *result = NULL;
    Py_ssize_t cap = 256, sp = 0;
    Frame *stack = PyMem_Malloc(cap * sizeof(Frame));
    if (!new || !num || !pos || !inputs || !key || !stack)
        goto fail;
    Py_ssize_t n_out = PySequence_Fast_GET_SIZE(outputs);
    PyObject **outs = PySequence_Fast_ITEMS(outputs);
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
                f->op = PyObject_GetAttr(n, s_op);
                if (f->op == NULL)
                    goto fail;
                PyObject *b = leaf_of(n, f->op);
                if (b == NULL && PyErr_Occurred())
                    goto fail;
                if (b != NULL) {
                    if (PyDict_SetItem(new, n, b) < 0 ||
                        number(num, key, n, buffer_entry(b, pos, inputs)) < 0)
                        goto fail;
                    Py_CLEAR(f->op);
                    sp--;
                    continue;
                }
                f->srcs = PyObject_GetAttr(n, s_srcs);
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

static PyMethodDef methods[] = {
    {"setup_graph", setup_graph, METH_VARARGS, "setup_graph(cache, tables): for dead()"},
    {"setup", setup, METH_VARARGS,
     "setup(realized, BUFFER, CONST, DETACH, is_constant, make_node, inherit): for prepare()"},
    {"dead", dead, METH_O, "the hash-consing table's weakref callback"},
    {"prepare", prepare, METH_O, "prepare(outputs) -> (new outputs, input buffers, key)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_lazytorch_native", NULL, -1,
                                    methods};

PyMODINIT_FUNC PyInit__lazytorch_native(void) {
    const char *names[] = {"op", "srcs", "arg", "shape", "dtype", "name", "key", "id", "B"};
    PyObject **slots[] = {&s_op, &s_srcs, &s_arg, &s_shape, &s_dtype, &s_name, &s_key, &s_id,
                          &s_B};
    for (int i = 0; i < 9; i++)
        if ((*slots[i] = PyUnicode_InternFromString(names[i])) == NULL)
            return NULL;
    return PyModule_Create(&module);
}
