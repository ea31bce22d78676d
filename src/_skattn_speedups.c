/*
 * _skattn_speedups: a vectorised float64 exp for skattn's engine, and exp fused with
 * the pooled sums of a prediction.
 *
 * SPDX-License-Identifier: BSD-3-Clause
 *
 * Almost all of a Nadaraya-Watson predict is exp over the query-by-key logits. NumPy's
 * float64 exp is a scalar libm call per element on processors without AVX-512 (about
 * 10 ns where it is not underflowing), while the GEMMs around it take about 2 ns per
 * entry. This file holds three routines: exp over a float64 buffer in place;
 * exp_pool, exp of a chunk of logits pooled against the values without writing the
 * weights; and gauss_pool, the same with the logits (the Gaussian kernel's dot
 * products of augmented queries and keys) computed in the cache too. All are
 * vectorised (AVX2 + FMA code where the processor has them, chosen
 * at run time; generic code otherwise, which skattn keeps for tests only: on SSE2 it
 * measured no faster than NumPy). The exp:
 *
 *   x = k ln2 + r, |r| <= ln2 / 2, k = round(x / ln2)     (Cody-Waite, two-part ln2)
 *   exp(r) = its Taylor polynomial of degree 13            (truncation < 5e-18 relative)
 *   exp(x) = 2^k exp(r)                                    (2^k built in the exponent bits)
 *
 * Measured against glibc: at most 1 ulp away, 0.06 ulp on average; against the exact
 * value (long double): at most 0.84 ulp (1.13 for the generic code, without FMA).
 * Inputs outside [-708.5, 709] (where 2^k leaves the normal range) and NaN go to
 * libm's exp, so underflow to subnormals and zero, overflow to inf, and NaN are
 * exactly libm's.
 * The package uses this module when it was built and the processor has AVX2 and FMA,
 * and numpy.exp otherwise (skattn/_fastmath.py); the results agree up to rounding
 * (NumPy's SIMD exp differs between machines and releases by an ulp or so).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(_MSC_VER)
#define SKATTN_RESTRICT __restrict
#else
#define SKATTN_RESTRICT restrict
#endif

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define SKATTN_X86_DISPATCH 1
#endif

#define FAST_LOW (-708.5)
#define FAST_HIGH 709.0
#define BLOCK 512

static inline uint64_t as_bits(double x) {
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline double from_bits(uint64_t u) {
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

#if defined(__GNUC__)
#define SKATTN_INLINE static inline __attribute__((always_inline))
#else
#define SKATTN_INLINE static __forceinline
#endif

/* The reduction's constants: 1 / ln 2, 1.5 * 2^52 (adding it rounds to an integer
   held in the low bits), and ln 2 in two parts (the first with 32 bits, so that
   k * LN2_HI is exact). */
#define INV_LN2 1.4426950408889634
#define ROUND_SHIFT 6755399441055744.0
#define LN2_HI 0.693147180369123816490
#define LN2_LO 1.90821492927058770002e-10
#define ONE_BITS 0x3ff0000000000000ULL

/* 1/13!, 1/12!, ..., 1/2!, 1, 1: exp(r)'s Taylor polynomial, highest term first. */
static const double EXP_TAYLOR[14] = {
    1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
    1.0 / 362880.0,     1.0 / 40320.0,     1.0 / 5040.0,     1.0 / 720.0,
    1.0 / 120.0,        1.0 / 24.0,        1.0 / 6.0,        0.5,
    1.0,                1.0,
};

/* exp(x) for x in [FAST_LOW, FAST_HIGH] (meaningless elsewhere), for a type T of
   doubles (a double, or a vector of them) and U of as many uint64: TO_BITS and
   FROM_BITS reinterpret one as the other. */
#define DEFINE_FAST_EXP(name, T, U, TO_BITS, FROM_BITS)                         \
    SKATTN_INLINE T name(T x) {                                                 \
        T kd = x * INV_LN2 + ROUND_SHIFT;                                       \
        U k = TO_BITS(kd);                                                      \
        kd -= ROUND_SHIFT;                                                      \
        T r = (x - kd * LN2_HI) - kd * LN2_LO;                                  \
        T p = r * EXP_TAYLOR[0] + EXP_TAYLOR[1];                                \
        for (int i = 2; i < 14; i++) p = p * r + EXP_TAYLOR[i];                 \
        /* the low bits of k hold round(x / ln2): shifted into the exponent */  \
        return p * FROM_BITS((k << 52) + ONE_BITS);                             \
    }

DEFINE_FAST_EXP(fast_exp, double, uint64_t, as_bits, from_bits)

/* exp of a[0..n) into out[0..n); returns nonzero when some a[i] lies outside
   [FAST_LOW, FAST_HIGH] or is NaN (those out[i] are then meaningless). */
SKATTN_INLINE int exp_block_impl(const double *SKATTN_RESTRICT a,
                                 double *SKATTN_RESTRICT out, Py_ssize_t n) {
    int bad = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        double x = a[i];
        bad |= !(x >= FAST_LOW) | !(x <= FAST_HIGH);
        out[i] = fast_exp(x);
    }
    return bad;
}

static int exp_block_generic(const double *SKATTN_RESTRICT a,
                             double *SKATTN_RESTRICT out, Py_ssize_t n) {
    return exp_block_impl(a, out, n);
}

#ifdef SKATTN_X86_DISPATCH
__attribute__((target("avx2,fma"))) static int
exp_block_avx2(const double *SKATTN_RESTRICT a, double *SKATTN_RESTRICT out,
               Py_ssize_t n) {
    return exp_block_impl(a, out, n);
}
#endif

typedef int (*exp_block_fn)(const double *SKATTN_RESTRICT,
                            double *SKATTN_RESTRICT, Py_ssize_t);

static exp_block_fn choose_block(void) {
#ifdef SKATTN_X86_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        return exp_block_avx2;
    }
#endif
    return exp_block_generic;
}

static exp_block_fn exp_block = NULL;

static void exp_inplace(double *a, Py_ssize_t n) {
    double copy[BLOCK];
    for (Py_ssize_t start = 0; start < n; start += BLOCK) {
        Py_ssize_t m = n - start < BLOCK ? n - start : BLOCK;
        memcpy(copy, a + start, (size_t)m * sizeof(double));
        if (exp_block(copy, a + start, m)) {
            for (Py_ssize_t i = 0; i < m; i++) {
                if (!(copy[i] >= FAST_LOW && copy[i] <= FAST_HIGH)) {
                    a[start + i] = exp(copy[i]);
                }
            }
        }
    }
}

/* ---- Gaussian attention pooling, fused ---------------------------------------
 *
 * out[r, c] = sum_j exp(l_rj) vt[c, j] for logits l <= 0 (log K + log w shifted),
 * a block of keys at a time in the cache: exp_pool takes the logits, gauss_pool
 * computes them, l_rj = qa[r] . kt[:, j] (the engine's augmented queries and keys),
 * so that the logits, their exp and the pooled sums are one pass and the
 * query-by-key matrix is never formed. A logit
 * below POOL_LOW (its weight below DBL_MIN, next to a largest weight of about 1)
 * weighs 0. A row with a NaN logit or one above FAST_HIGH gets NaN in its last
 * column (the engine's normaliser), which sends it down the engine's exact path.
 */
#define POOL_LOW (-708.39)
#define POOL_KEYS 512
#define POOL_MAX_VALUES 8
#define UNROLL 4

#if defined(__GNUC__) && !defined(__clang__)
/* fast_exp4 is always inlined: the ABI of a v4d return value never applies */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
#if defined(__GNUC__)
/* GCC's and clang's vector extensions: 4 doubles (one AVX2 register, two SSE2 or
   NEON ones), so that the fused loop keeps its logits in registers. */
typedef double v4d __attribute__((vector_size(32)));
typedef uint64_t v4u __attribute__((vector_size(32)));
typedef int64_t v4i __attribute__((vector_size(32)));
#define VW 4

SKATTN_INLINE v4d load4(const double *p) {
    v4d v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* fast_exp on 4 lanes at once (the same operations). */
DEFINE_FAST_EXP(fast_exp4, v4d, v4u, (v4u), (v4d))
#else
#define VW 1
#endif

/* The logit of one query at key `at`: read from its row of logits, or, where q is
   not NULL, the dot product of the augmented query q (K entries) with the key's
   column of kt (K rows of n), summed in the order of k. */
SKATTN_INLINE double logit1(const double *SKATTN_RESTRICT row,
                            const double *SKATTN_RESTRICT q, Py_ssize_t K,
                            const double *SKATTN_RESTRICT kt, Py_ssize_t n,
                            Py_ssize_t at) {
    if (q == NULL) return row[at];
    double x = q[0] * kt[at];
    for (Py_ssize_t k = 1; k < K; k++) x += q[k] * kt[k * n + at];
    return x;
}

#if VW > 1
/* The weights of `lanes` vectors of keys from `at` (their logits as logit1's, the
   dot products over k outermost so that `lanes` independent chains of FMAs are in
   flight), pooled into sums (m of them), and their logits' flags (NaN or above
   FAST_HIGH) into flags; always inlined with a constant `lanes`. */
SKATTN_INLINE void pool_vectors(int lanes, const double *SKATTN_RESTRICT row,
                                const double *SKATTN_RESTRICT q, Py_ssize_t K,
                                const double *SKATTN_RESTRICT kt, Py_ssize_t n,
                                const double *SKATTN_RESTRICT vt, Py_ssize_t m,
                                Py_ssize_t at, v4d *sums, v4i *flags) {
    v4d x[UNROLL], e[UNROLL];
    if (q == NULL) {
        for (int u = 0; u < lanes; u++) x[u] = load4(row + at + u * VW);
    } else {
        for (int u = 0; u < lanes; u++) x[u] = q[0] * load4(kt + at + u * VW);
        for (Py_ssize_t k = 1; k < K; k++) {
            const double *column = kt + k * n + at;
            for (int u = 0; u < lanes; u++) x[u] += q[k] * load4(column + u * VW);
        }
    }
    for (int u = 0; u < lanes; u++) {
        *flags |= ~(x[u] <= FAST_HIGH);
        e[u] = (v4d)((v4u)fast_exp4(x[u]) & (v4u)(x[u] >= POOL_LOW));
    }
    for (Py_ssize_t c = 0; c < m; c++) {
        const double *v = vt + c * n + at;
        for (int u = 0; u < lanes; u++) sums[c] += e[u] * load4(v + u * VW);
    }
}
#endif

/* out[r, c] = sum_j w_rj vt[c, j], w_rj = exp(l_rj) (0 below POOL_LOW), for the
   logits l (R, n), given (qa NULL) or the products qa (R, K) @ kt (K, n);
   out[r, m - 1] = NaN where a logit of row r is NaN or above FAST_HIGH. Keys go by
   blocks of POOL_KEYS so that their values (and columns) stay in the cache for
   every row. Each row's sums depend on that row alone. */
SKATTN_INLINE void pool_impl(const double *SKATTN_RESTRICT logits,
                             const double *SKATTN_RESTRICT qa, Py_ssize_t K,
                             const double *SKATTN_RESTRICT kt, Py_ssize_t R,
                             Py_ssize_t n, const double *SKATTN_RESTRICT vt,
                             Py_ssize_t m, double *SKATTN_RESTRICT out) {
    for (Py_ssize_t r = 0; r < R; r++) {
        for (Py_ssize_t c = 0; c < m; c++) out[r * m + c] = 0.0;
    }
    for (Py_ssize_t k0 = 0; k0 < n; k0 += POOL_KEYS) {
        Py_ssize_t kn = n - k0 < POOL_KEYS ? n - k0 : POOL_KEYS;
        for (Py_ssize_t r = 0; r < R; r++) {
            const double *row = qa == NULL ? logits + r * n : NULL;
            const double *q = qa == NULL ? NULL : qa + r * K;
            double *o = out + r * m;
            int over = 0;
            Py_ssize_t j = 0;
#if VW > 1
            v4d sums[POOL_MAX_VALUES];
            v4i flags = {0, 0, 0, 0};
            for (Py_ssize_t c = 0; c < m; c++) sums[c] = (v4d){0.0, 0.0, 0.0, 0.0};
            for (; j + UNROLL * VW <= kn; j += UNROLL * VW) {
                pool_vectors(UNROLL, row, q, K, kt, n, vt, m, k0 + j, sums, &flags);
            }
            for (; j + VW <= kn; j += VW) {
                pool_vectors(1, row, q, K, kt, n, vt, m, k0 + j, sums, &flags);
            }
            for (Py_ssize_t c = 0; c < m; c++) {
                o[c] += (sums[c][0] + sums[c][2]) + (sums[c][1] + sums[c][3]);
            }
            over = (flags[0] | flags[1] | flags[2] | flags[3]) != 0;
#endif
            for (; j < kn; j++) {
                double x = logit1(row, q, K, kt, n, k0 + j);
                over |= !(x <= FAST_HIGH);
                double e = x >= POOL_LOW ? fast_exp(x) : 0.0;
                for (Py_ssize_t c = 0; c < m; c++) o[c] += e * vt[c * n + k0 + j];
            }
            if (over) o[m - 1] = NAN;
        }
    }
}

static void gauss_pool_generic(const double *SKATTN_RESTRICT qa, Py_ssize_t R,
                               Py_ssize_t K, const double *SKATTN_RESTRICT kt,
                               Py_ssize_t n, const double *SKATTN_RESTRICT vt,
                               Py_ssize_t m, double *SKATTN_RESTRICT out) {
    pool_impl(NULL, qa, K, kt, R, n, vt, m, out);
}

#ifdef SKATTN_X86_DISPATCH
__attribute__((target("avx2,fma"))) static void
gauss_pool_avx2(const double *SKATTN_RESTRICT qa, Py_ssize_t R, Py_ssize_t K,
                const double *SKATTN_RESTRICT kt, Py_ssize_t n,
                const double *SKATTN_RESTRICT vt, Py_ssize_t m,
                double *SKATTN_RESTRICT out) {
    pool_impl(NULL, qa, K, kt, R, n, vt, m, out);
}
#endif

static void pool_generic(const double *SKATTN_RESTRICT logits, Py_ssize_t R,
                         Py_ssize_t n, const double *SKATTN_RESTRICT vt, Py_ssize_t m,
                         double *SKATTN_RESTRICT out) {
    pool_impl(logits, NULL, 0, NULL, R, n, vt, m, out);
}

#ifdef SKATTN_X86_DISPATCH
__attribute__((target("avx2,fma"))) static void
pool_avx2(const double *SKATTN_RESTRICT logits, Py_ssize_t R, Py_ssize_t n,
          const double *SKATTN_RESTRICT vt, Py_ssize_t m, double *SKATTN_RESTRICT out) {
    pool_impl(logits, NULL, 0, NULL, R, n, vt, m, out);
}
#endif

static PyObject *speedups_exp(PyObject *self, PyObject *arg) {
    Py_buffer view;
    (void)self;
    if (PyObject_GetBuffer(arg, &view,
                           PyBUF_WRITABLE | PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        return NULL;
    }
    if (view.itemsize != (Py_ssize_t)sizeof(double) || view.format == NULL ||
        strcmp(view.format, "d") != 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_TypeError,
                        "exp needs a writable, C-contiguous buffer of native float64");
        return NULL;
    }
    Py_ssize_t n = view.len / (Py_ssize_t)sizeof(double);
    Py_BEGIN_ALLOW_THREADS
    exp_inplace((double *)view.buf, n);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

typedef void (*pool_fn)(const double *SKATTN_RESTRICT, Py_ssize_t, Py_ssize_t,
                        const double *SKATTN_RESTRICT, Py_ssize_t,
                        double *SKATTN_RESTRICT);

static pool_fn pool_block = NULL;

/* A float64, C-contiguous, 2-D buffer (writable if asked); 0 or -1 with an error. */
static int matrix_buffer(PyObject *obj, Py_buffer *view, int writable, const char *name) {
    int flags = PyBUF_FORMAT | PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        return -1;
    }
    if (view->ndim != 2 || view->itemsize != (Py_ssize_t)sizeof(double) ||
        view->format == NULL || strcmp(view->format, "d") != 0) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError,
                     "exp_pool: %s must be a 2-D, C-contiguous array of native float64",
                     name);
        return -1;
    }
    return 0;
}

static PyObject *speedups_exp_pool(PyObject *self, PyObject *args) {
    PyObject *objs[3];
    Py_buffer views[3];
    static const char *names[3] = {"logits", "values", "out"};
    int got = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOO:exp_pool", &objs[0], &objs[1], &objs[2])) {
        return NULL;
    }
    for (; got < 3; got++) {
        if (matrix_buffer(objs[got], &views[got], got == 2, names[got]) < 0) {
            goto fail;
        }
    }
    Py_ssize_t R = views[0].shape[0], n = views[0].shape[1], m = views[1].shape[0];
    if (views[1].shape[1] != n || views[2].shape[0] != R || views[2].shape[1] != m ||
        m < 1 || m > POOL_MAX_VALUES) {
        PyErr_SetString(PyExc_ValueError,
                        "exp_pool: shapes must be logits (R, n), values (m, n) and "
                        "out (R, m), with 1 <= m <= 8");
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    pool_block((const double *)views[0].buf, R, n, (const double *)views[1].buf, m,
               (double *)views[2].buf);
    Py_END_ALLOW_THREADS
    for (int i = 0; i < 3; i++) PyBuffer_Release(&views[i]);
    Py_RETURN_NONE;
fail:
    for (int i = 0; i < got; i++) PyBuffer_Release(&views[i]);
    return NULL;
}

typedef void (*gauss_pool_fn)(const double *SKATTN_RESTRICT, Py_ssize_t, Py_ssize_t,
                              const double *SKATTN_RESTRICT, Py_ssize_t,
                              const double *SKATTN_RESTRICT, Py_ssize_t,
                              double *SKATTN_RESTRICT);

static gauss_pool_fn gauss_pool_block = NULL;

static PyObject *speedups_gauss_pool(PyObject *self, PyObject *args) {
    PyObject *objs[4];
    Py_buffer views[4];
    static const char *names[4] = {"queries", "keys", "values", "out"};
    int got = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOO:gauss_pool", &objs[0], &objs[1], &objs[2],
                          &objs[3])) {
        return NULL;
    }
    for (; got < 4; got++) {
        if (matrix_buffer(objs[got], &views[got], got == 3, names[got]) < 0) {
            goto fail;
        }
    }
    Py_ssize_t R = views[0].shape[0], K = views[0].shape[1];
    Py_ssize_t n = views[1].shape[1], m = views[2].shape[0];
    if (K < 1 || views[1].shape[0] != K || views[2].shape[1] != n ||
        views[3].shape[0] != R || views[3].shape[1] != m || m < 1 ||
        m > POOL_MAX_VALUES) {
        PyErr_SetString(PyExc_ValueError,
                        "gauss_pool: shapes must be queries (R, K), keys (K, n), "
                        "values (m, n) and out (R, m), with K >= 1 and 1 <= m <= 8");
        goto fail;
    }
    Py_BEGIN_ALLOW_THREADS
    gauss_pool_block((const double *)views[0].buf, R, K, (const double *)views[1].buf,
                     n, (const double *)views[2].buf, m, (double *)views[3].buf);
    Py_END_ALLOW_THREADS
    for (int i = 0; i < 4; i++) PyBuffer_Release(&views[i]);
    Py_RETURN_NONE;
fail:
    for (int i = 0; i < got; i++) PyBuffer_Release(&views[i]);
    return NULL;
}

static PyObject *speedups_instruction_set(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
#ifdef SKATTN_X86_DISPATCH
    if (exp_block == exp_block_avx2) {
        return PyUnicode_FromString("avx2+fma");
    }
#endif
    return PyUnicode_FromString("generic");
}

/* Switch both routines to one code path: "generic" always exists, "avx2+fma" where
   the processor has them. For tests (both paths against the reference). */
static PyObject *speedups_use_instruction_set(PyObject *self, PyObject *arg) {
    (void)self;
    const char *name = PyUnicode_AsUTF8(arg);
    if (name == NULL) {
        return NULL;
    }
    if (strcmp(name, "generic") == 0) {
        exp_block = exp_block_generic;
        pool_block = pool_generic;
        gauss_pool_block = gauss_pool_generic;
        Py_RETURN_NONE;
    }
#ifdef SKATTN_X86_DISPATCH
    if (strcmp(name, "avx2+fma") == 0 && choose_block() == exp_block_avx2) {
        exp_block = exp_block_avx2;
        pool_block = pool_avx2;
        gauss_pool_block = gauss_pool_avx2;
        Py_RETURN_NONE;
    }
#endif
    PyErr_Format(PyExc_ValueError, "instruction set %R is not available here", arg);
    return NULL;
}

static PyMethodDef speedups_methods[] = {
    {"exp", speedups_exp, METH_O,
     "exp(a, /)\n--\n\nWrite exp(a) into the writable, C-contiguous float64 buffer a."},
    {"exp_pool", speedups_exp_pool, METH_VARARGS,
     "exp_pool(logits, values, out, /)\n--\n\n"
     "out[r, c] = sum_j exp(logits[r, j]) * values[c, j] for logits <= 0, fused;\n"
     "logits below -708.39 weigh 0, and out[r, -1] is NaN where a logit of row r\n"
     "is NaN or above 709."},
    {"gauss_pool", speedups_gauss_pool, METH_VARARGS,
     "gauss_pool(queries, keys, values, out, /)\n--\n\n"
     "exp_pool of the logits queries @ keys, computed on the fly and never\n"
     "written: out[r, c] = sum_j exp(queries[r] . keys[:, j]) * values[c, j]."},
    {"instruction_set", speedups_instruction_set, METH_NOARGS,
     "instruction_set()\n--\n\nThe code path exp runs on: 'avx2+fma' or 'generic'."},
    {"use_instruction_set", speedups_use_instruction_set, METH_O,
     "use_instruction_set(name, /)\n--\n\n"
     "Run on 'generic' or (where available) 'avx2+fma' code (for tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "_skattn_speedups",
    "Compiled helpers of skattn (a vectorised float64 exp, and exp fused with pooling).",
    -1, speedups_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__skattn_speedups(void) {
    exp_block = choose_block();
    pool_block = pool_generic;
    gauss_pool_block = gauss_pool_generic;
#ifdef SKATTN_X86_DISPATCH
    if (exp_block == exp_block_avx2) {
        pool_block = pool_avx2;
        gauss_pool_block = gauss_pool_avx2;
    }
#endif
    return PyModule_Create(&speedups_module);
}
