/* native_module.c: the module's method table */
static PyMethodDef methods[] = {
    {"fast_slots", fast_slots, METH_VARARGS, "fast_slots(type, names): read them directly"},
    {"setup_graph", setup_graph, METH_VARARGS,
     "setup_graph(cache, tables, Node, ref type, node slots, ref slots, callback, CONST)"},
    {"new_node", (PyCFunction)(void (*)(void))new_node, METH_FASTCALL,
     "new_node(op, srcs, arg, shape, dtype): the hash-consed node"},
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
    {"setup_autograd", setup_autograd, METH_VARARGS,
     "setup_autograd(leaves, memo, STOP, NO_GRAD, consumed, born, clock, GRAD, complain, "
     "mark_backward, new_node, CAST, ADD)"},
    {"tracked", tracked, METH_O, "tracked(node): autograd.tracked"},
    {"setup_tensors", setup_tensors, METH_VARARGS, "setup_tensors(results, state, DETACH)"},
    {"on_new_tensor", on_new_tensor, METH_O, "on_new_tensor(t): autograd.on_new_tensor"},
    {"grad_graph", (PyCFunction)(void (*)(void))grad_graph, METH_FASTCALL,
     "grad_graph(roots, grads, targets, retain_graph): autograd._grad_graph"},
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

