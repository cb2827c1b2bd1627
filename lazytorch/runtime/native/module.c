/* module.c: the extension module lazytorch.runtime.native._native, one translation unit made
 * of these parts (they share static state):
 *
 *   base.c      helpers shared by the others: direct slot reads, the walks' stacks
 *   graph.c     new_node (the hash-consed constructor), the node-death callback, toposort
 *   sites.c     record_from and mark_backward: the user's source line of each recorded node
 *   prepare.c   prepare: realize's walk, substituting buffers and building the plan key
 *
 * and below, its method table. Built at install time (setup.py) or at run time into the disk
 * cache (native/__init__.py); either build defines LAZYTORCH_NATIVE_DIGEST, the digest of these
 * files (native/sources.py), which the loader compares with the files it has. The Python
 * versions are the reference; tests compare the two on the same graphs. */
#include "base.c"
#include "graph.c"
#include "sites.c"
#include "prepare.c"

#ifndef LAZYTORCH_NATIVE_DIGEST
#define LAZYTORCH_NATIVE_DIGEST ""
#endif

static PyMethodDef methods[] = {
    {"fast_slots", fast_slots, METH_VARARGS, "fast_slots(type, names): read them directly"},
    {"setup_graph", setup_graph, METH_VARARGS,
     "setup_graph(cache, tables, Node, ref type, node slots, ref slots, callback, CONST, "
     "FUNCTION)"},
    {"new_node", (PyCFunction)(void (*)(void))new_node, METH_FASTCALL,
     "new_node(op, srcs, arg, shape, dtype[, device]): the hash-consed node"},
    {"setup", setup, METH_VARARGS,
     "setup(realized, BUFFER, CONST, DETACH, is_constant, make_node, inherit, FUNCTION): for "
     "prepare()"},
    {"setup_sites", setup_sites, METH_VARARGS, "setup_sites(sites, codes, classify, BUFFER)"},
    {"record_from", (PyCFunction)(void (*)(void))record_from, METH_FASTCALL,
     "record_from(node, frame, api): remember the user's line that made node"},
    {"dead", dead, METH_O, "the hash-consing table's weakref callback"},
    {"toposort", (PyCFunction)(void (*)(void))toposort, METH_FASTCALL,
     "toposort(outputs, is_leaf or None): graph.toposort"},
    {"prepare", prepare, METH_O,
     "prepare(outputs) -> (new outputs, input buffers, key, walked nodes, what stands for each)"},
    {"held", (PyCFunction)(void (*)(void))held, METH_FASTCALL,
     "held(order, order_new, key, free_ops): live.held_py"},
    {"address", address, METH_O, "address(array): its first byte's address"},
    {"setup_backward", setup_backward, METH_VARARGS, "setup_backward(BACKWARD table, site_fn)"},
    {"mark_backward", (PyCFunction)(void (*)(void))mark_backward, METH_FASTCALL,
     "mark_backward(nodes, like): nodes built by like's gradient rule"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "lazytorch.runtime.native._native",
                                    NULL, -1, methods};

PyMODINIT_FUNC PyInit__native(void) {
    const char *names[] = {"op", "srcs", "arg", "shape", "dtype", "name", "key", "id", "B",
                           "f_lasti"};
    PyObject **slots[] = {&s_op, &s_srcs, &s_arg, &s_shape, &s_dtype, &s_name, &s_key, &s_id,
                          &s_B, &s_f_lasti};
    for (int i = 0; i < 10; i++)
        if ((*slots[i] = PyUnicode_InternFromString(names[i])) == NULL)
            return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddStringConstant(m, "DIGEST", LAZYTORCH_NATIVE_DIGEST) < 0)
        Py_CLEAR(m);
    return m;
}
