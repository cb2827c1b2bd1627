"""Index expressions: the simplifications that turn reshapes back into strides, checked by
evaluating every expression on all values of its variables against plain integer arithmetic."""
import itertools

from lazytorch.compiler.symbolic import Lin, Var, reshape_index, unravel


def evaluate(e: Lin, env: dict[str, int]) -> int:
    """Python's semantics for an expression (floor division and modulo)."""
    total = e.const
    for atom, k in e.terms:
        if isinstance(atom, Var):
            v = env[atom.name]
        else:
            inner = evaluate(atom.x, env)
            v = inner // atom.c if type(atom).__name__ == "Div" else inner % atom.c
        total += k * v
    return total


def c_eval(src: str, env: dict[str, int]) -> int:
    """The rendered C text, evaluated with C's truncating / and %."""
    class CInt(int):
        def __floordiv__(self, o):
            q = abs(int(self)) // abs(int(o))
            return CInt(q if (self >= 0) == (o >= 0) else -q)

        def __mod__(self, o):
            return CInt(int(self) - int(o) * int(CInt(self) // o))

        def __add__(self, o):
            return CInt(int(self) + int(o))

        __radd__ = __add__

        def __mul__(self, o):
            return CInt(int(self) * int(o))

        __rmul__ = __mul__

    expr = src.replace("/", "//")
    return int(eval(expr, {}, {k: CInt(v) for k, v in env.items()}))


def test_div_mod_of_a_split_index_fold_away():
    a, b = Var("a", 5), Var("b", 8)
    e = Lin.of(a) * 8 + Lin.of(b)
    assert (e // 8).render() == "a"
    assert (e % 8).render() == "b"


def test_unravel_then_ravel_is_the_identity():
    i = Var("i", 24)
    parts = unravel(Lin.of(i), (2, 3, 4))
    back = (parts[0] * 3 + parts[1]) * 4 + parts[2]
    assert back.render() == "i"


def test_reshape_index_matches_numpy_order_and_renders_for_c():
    shape, src = (6, 4), (2, 3, 4)
    v = (Var("p", 6), Var("q", 4))
    idx = reshape_index(tuple(Lin.of(x) for x in v), shape, src)
    for p, q in itertools.product(range(6), range(4)):
        flat = p * 4 + q
        want = (flat // 12, (flat // 4) % 3, flat % 4)
        env = {"p": p, "q": q}
        assert tuple(evaluate(e, env) for e in idx) == want
        assert tuple(c_eval(e.render(), env) for e in idx) == want


def test_negative_left_sides_render_with_floor_semantics():
    # a flipped index inside a reshape: C's truncating % would read the wrong element
    r = Var("r", 4)
    e = (Lin.of(r) * -1 + 1) % 4      # negative for r = 2, 3
    f = (Lin.of(r) * -1 + 1) // 4
    for v in range(4):
        assert c_eval(e.render(), {"r": v}) == (1 - v) % 4
        assert c_eval(f.render(), {"r": v}) == (1 - v) // 4
