/*
 * mlmon_logging._speedups: the per-event half of FeatureSplitter in C (optional).
 *
 * Why hand-written C: splitting a plain feature dict into numeric and categorical
 * dicts by a cached plan is the largest cost of the emitter's writer thread, and in
 * Python it stays object-by-object work (a names list, a types list, a dict copy,
 * pops): about 17,000 instructions for 20 features (callgrind), where this function
 * needs about 5,500. No maintained library does this split. The module
 * is optional: setup.py builds it when a compiler is at hand, and without it
 * mlmon_logging.plans does the same in Python (tests/emitter/test_speedups.py
 * checks both give the same result).
 *
 * apply_plan(features, names, kinds) -> dict | None
 *   features: the feature dict of one event.
 *   names:    the names of the plan's shape, a list, in the dict's order.
 *   kinds:    bytes, one per name: 'f' a float, 'i' an int (written as a float),
 *             's' a categorical string.
 * Returns {"numeric": {...}, "categorical": {...}} (empty groups left out) when
 * features is an exact dict with exactly these names in this order, each value of
 * exactly its kind (no subclasses: bool is not an int here) and every float finite;
 * else None, and the caller takes its Python path, which decides what to do.
 * Keys must be exact str: no user __eq__ or __hash__ runs while the dict is walked.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

static PyObject *numeric_key;      /* "numeric" */
static PyObject *categorical_key;  /* "categorical" */

static PyObject *
apply_plan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "apply_plan(features, names, kinds) takes 3 arguments");
        return NULL;
    }
    PyObject *features = args[0], *names = args[1], *kinds = args[2];
    if (!PyList_CheckExact(names) || !PyBytes_CheckExact(kinds)) {
        PyErr_SetString(PyExc_TypeError, "apply_plan: names must be a list and kinds bytes");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(names);
    if (PyBytes_GET_SIZE(kinds) != n) {
        PyErr_SetString(PyExc_ValueError, "apply_plan: one kind per name");
        return NULL;
    }
    if (!PyDict_CheckExact(features) || PyDict_GET_SIZE(features) != n) {
        Py_RETURN_NONE;
    }
    const char *kind = PyBytes_AS_STRING(kinds);
    Py_ssize_t n_categorical = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        n_categorical += kind[k] == 's';
    }
    PyObject *result = PyDict_New();
    if (result == NULL || n == 0) {
        return result;
    }
    /* Mostly numbers: copy the dict whole (one C-level clone) and move the strings out
     * as the one pass over it checks names, order and kinds. All strings: copy it as the
     * categorical dict. A dict that declines half-way costs the copy, once per new shape. */
    PyObject *numeric = NULL, *categorical = NULL;
    if (n_categorical == n) {
        categorical = PyDict_Copy(features);
    }
    else {
        numeric = PyDict_Copy(features);
        categorical = n_categorical ? PyDict_New() : NULL;
    }
    if ((n_categorical < n && numeric == NULL) || (n_categorical && categorical == NULL)) {
        goto fail;
    }
    Py_ssize_t pos = 0, i = 0;
    PyObject *key, *value;
    while (PyDict_Next(features, &pos, &key, &value)) {
        PyObject *name = PyList_GET_ITEM(names, i);
        if (!PyUnicode_CheckExact(key)) {
            goto decline;
        }
        if (key != name) {
            /* Exact str on both sides: the comparison runs no Python code. */
            if (!PyUnicode_CheckExact(name) || PyUnicode_Compare(key, name) != 0) {
                if (PyErr_Occurred()) {
                    goto fail;
                }
                goto decline;
            }
        }
        switch (kind[i]) {
        case 'f':
            if (!PyFloat_CheckExact(value) || !isfinite(PyFloat_AS_DOUBLE(value))) {
                goto decline;
            }
            break;
        case 'i': {
            if (!PyLong_CheckExact(value)) {
                goto decline;
            }
            double as_double = PyLong_AsDouble(value);
            if (as_double == -1.0 && PyErr_Occurred()) {
                if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
                    goto fail;
                }
                PyErr_Clear();  /* beyond the float range: the Python path flags it */
                goto decline;
            }
            PyObject *as_float = PyFloat_FromDouble(as_double);
            if (as_float == NULL || PyDict_SetItem(numeric, key, as_float) < 0) {
                Py_XDECREF(as_float);
                goto fail;
            }
            Py_DECREF(as_float);
            break;
        }
        case 's':
            if (!PyUnicode_CheckExact(value)) {
                goto decline;
            }
            if (numeric != NULL &&
                (PyDict_SetItem(categorical, key, value) < 0 || PyDict_DelItem(numeric, key) < 0)) {
                goto fail;
            }
            break;
        default:
            PyErr_Format(PyExc_ValueError, "apply_plan: unknown kind %c", kind[i]);
            goto fail;
        }
        i++;
    }
    if ((numeric != NULL && PyDict_SetItem(result, numeric_key, numeric) < 0) ||
        (categorical != NULL && PyDict_SetItem(result, categorical_key, categorical) < 0)) {
        goto fail;
    }
    Py_XDECREF(numeric);
    Py_XDECREF(categorical);
    return result;
decline:
    Py_XDECREF(numeric);
    Py_XDECREF(categorical);
    Py_DECREF(result);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(numeric);
    Py_XDECREF(categorical);
    Py_XDECREF(result);
    return NULL;
}

/*
 * split_row(numeric_keys, numeric_columns, categorical_keys, categorical_columns, i) -> dict | None
 *   Row i of a log_predictions slice (mlmon_logging/blocks.py), split as apply_plan splits
 *   that row's dict by the plan of the slice's shape, without the dict. The keys are dicts
 *   {name: None} in the plan's order (dict.fromkeys(names)), the columns lists, one per
 *   key in that order, each longer than i; i comes last so that functools.partial can bind
 *   the rest once per slice. Returns {"numeric": {...}, "categorical": {...}} (empty
 *   groups left out) when every numeric value is an exact, finite float and every
 *   categorical one an exact str; else None, and the row takes the dict path.
 *   Each group is a clone of its keys dict with the values replaced: measured 1.5x faster
 *   than inserting into a fresh dict (no growing; the clone copies the key table whole).
 */
static PyObject *
group(PyObject *keys, PyObject *columns, Py_ssize_t i, int numeric, int *declined)
{
    PyObject *out = PyDict_Copy(keys);
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t pos = 0, k = 0;
    PyObject *key, *unused;
    while (PyDict_Next(keys, &pos, &key, &unused)) {
        PyObject *column = PyList_GET_ITEM(columns, k++);
        if (!PyList_CheckExact(column) || i >= PyList_GET_SIZE(column)) {
            Py_DECREF(out);
            PyErr_SetString(PyExc_ValueError, "split_row: every column must be a list longer than i");
            return NULL;
        }
        PyObject *value = PyList_GET_ITEM(column, i);
        if (numeric ? !(PyFloat_CheckExact(value) && isfinite(PyFloat_AS_DOUBLE(value)))
                    : !PyUnicode_CheckExact(value)) {
            *declined = 1;
            return out;
        }
        if (PyDict_SetItem(out, key, value) < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

static PyObject *
split_row(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "split_row(numeric_keys, numeric_columns, categorical_keys, categorical_columns, i)");
        return NULL;
    }
    Py_ssize_t i = PyLong_AsSsize_t(args[4]);
    if (i == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *keys[2] = {args[0], args[2]};
    PyObject *columns[2] = {args[1], args[3]};
    for (int g = 0; g < 2; g++) {
        if (i < 0 || !PyDict_CheckExact(keys[g]) || !PyList_CheckExact(columns[g]) ||
            PyDict_GET_SIZE(keys[g]) != PyList_GET_SIZE(columns[g])) {
            PyErr_SetString(PyExc_TypeError, "split_row: keys must be dicts and columns lists, one per key, i >= 0");
            return NULL;
        }
    }
    PyObject *result = PyDict_New();
    if (result == NULL) {
        return NULL;
    }
    int declined = 0;
    PyObject *parts[2] = {numeric_key, categorical_key};
    for (int g = 0; g < 2; g++) {
        if (PyDict_GET_SIZE(keys[g]) == 0) {
            continue;
        }
        PyObject *part = group(keys[g], columns[g], i, g == 0, &declined);
        if (part == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        if (declined) {
            Py_DECREF(part);
            Py_DECREF(result);
            Py_RETURN_NONE;
        }
        int failed = PyDict_SetItem(result, parts[g], part) < 0;
        Py_DECREF(part);
        if (failed) {
            Py_DECREF(result);
            return NULL;
        }
    }
    return result;
}

static PyMethodDef methods[] = {
    {"split_row", (PyCFunction)(void (*)(void))split_row, METH_FASTCALL,
     "split_row(numeric_keys, numeric_columns, categorical_keys, categorical_columns, i) -> dict or None"},
    {"apply_plan", (PyCFunction)(void (*)(void))apply_plan, METH_FASTCALL,
     "apply_plan(features, names, kinds) -> {'numeric': ..., 'categorical': ...} or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mlmon_logging._speedups",
    .m_doc = "Optional C speedups of mlmon_logging (see the comment at the top of _speedups.c).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    numeric_key = PyUnicode_InternFromString("numeric");
    categorical_key = PyUnicode_InternFromString("categorical");
    if (numeric_key == NULL || categorical_key == NULL) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
