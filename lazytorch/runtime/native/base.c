/* base.c: helpers shared by the other parts of the module (module.c lists them): direct slot
 * reads, the walks' explicit stacks. The module uses CPython's public C API only (a Python
 * release may remove a private call; tests/test_native.py checks these files for them). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <structmember.h>

/* state shared by more than one file (each file keeps its own otherwise) */
static PyObject *g_const;
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

/* drop key from d if present (errors are cleared: used by the node-death callback) */
static void discard(PyObject *d, PyObject *key) {
#if PY_VERSION_HEX >= 0x030D0000
    if (PyDict_Pop(d, key, NULL) < 0)
        PyErr_Clear();
#else
    PyObject *v = PyDict_GetItemWithError(d, key);   /* borrowed */
    if (v != NULL ? PyDict_DelItem(d, key) < 0 : PyErr_Occurred() != NULL)
        PyErr_Clear();
#endif
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

/* room for `need` entries of `size` bytes in *stack, whose capacity *cap doubles as needed:
 * 0, or -1 with MemoryError (the walks' explicit stacks) */
static int reserve(void *stack, Py_ssize_t *cap, Py_ssize_t need, size_t size) {
    if (need <= *cap)
        return 0;
    Py_ssize_t c = *cap;
    while (c < need)
        c *= 2;
    void *grown = PyMem_Realloc(*(void **)stack, c * size);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *(void **)stack = grown;
    *cap = c;
    return 0;
}

/* stack.pop() of a non-empty list: a new reference, or NULL with an exception */
static PyObject *pop(PyObject *stack) {
    Py_ssize_t last = PyList_GET_SIZE(stack) - 1;
    PyObject *v = PyList_GET_ITEM(stack, last);
    Py_INCREF(v);
    if (PyList_SetSlice(stack, last, last + 1, NULL) < 0) {
        Py_DECREF(v);
        return NULL;
    }
    return v;
}

/* stack.extend(n.srcs): 0, or -1 with an exception */
static int push_srcs(PyObject *stack, PyObject *n) {
    PyObject *srcs = get(n, s_srcs);
    if (srcs == NULL)
        return -1;
    int rc = 0;
    if (!PyTuple_Check(srcs)) {
        PyErr_SetString(PyExc_TypeError, "a node's srcs must be a tuple");
        rc = -1;
    }
    for (Py_ssize_t i = 0; rc == 0 && i < PyTuple_GET_SIZE(srcs); i++)
        rc = PyList_Append(stack, PyTuple_GET_ITEM(srcs, i));
    Py_DECREF(srcs);
    return rc;
}

typedef struct {
    PyObject *node;   /* borrowed: kept alive by the outputs' graph */
    PyObject *op;     /* owned, NULL until the node is first seen */
    PyObject *srcs;   /* owned */
    Py_ssize_t i;     /* next source to visit */
} Frame;

