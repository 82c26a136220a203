#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *tu_models_dir(void)
{
    const char *d = getenv("IMGCLASS_MODELS");
    return d && *d ? d : "build-models";
}

const char *tu_shared_dir(void)
{
    const char *d = getenv("IMGCLASS_SHARED");
    return d && *d ? d : "../shared";
}

const char *tu_path(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return buf;
}

double tu_rel_error(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= num)) /* also catches NaN */
            num = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > den)
            den = fabs(b[i]);
    }
    return den > 0 ? num / den : num;
}

void tu_topk(const float *x, size_t n, int k, int *idx)
{
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (size_t i = 0; i < n; i++) {
            int taken = 0;
            for (int t = 0; t < j; t++)
                taken |= idx[t] == (int)i;
            if (!taken && (best < 0 || x[i] > x[best]))
                best = (int)i;
        }
        idx[j] = best;
    }
}

int tu_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
