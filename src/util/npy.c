/* .npy reading and writing. The header is a Python dict literal; we accept
 * exactly the keys np.save writes and check the data size against it. */
#include "npy.h"
#include "file.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *msg, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *msg, size_t size, const char *fmt, ...)
{
    if (msg && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void npy_free(npy_array_t *arr)
{
    free(arr->data);
    memset(arr, 0, sizeof *arr);
}

/* Finds 'key': in the header and returns a pointer past the colon. */
static const char *find_key(const char *h, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (isspace((unsigned char)*p))
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (isspace((unsigned char)*p))
        p++;
    return p;
}

int npy_parse(const void *buf, size_t size, npy_array_t *arr, char *msg,
              size_t msg_size)
{
    memset(arr, 0, sizeof *arr);
    const unsigned char *b = buf;
    if (size < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return fail(msg, msg_size, "not a .npy file (bad magic)");
    int major = b[6];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12)
            return fail(msg, msg_size, "truncated .npy header");
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 |
               (size_t)b[11] << 24;
        hoff = 12;
    } else {
        return fail(msg, msg_size, ".npy format version %d is not supported",
                    major);
    }
    if (hlen > size - hoff || hlen > 65536)
        return fail(msg, msg_size, "truncated .npy header");
    char *h = malloc(hlen + 1);
    if (!h)
        return fail(msg, msg_size, "out of memory");
    memcpy(h, b + hoff, hlen);
    h[hlen] = '\0';

    int rc = 0;
    const char *p = find_key(h, "descr");
    if (!p || (strncmp(p, "'<f4'", 5) != 0 && strncmp(p, "'float32'", 9) != 0)) {
        char d[16] = "?";
        if (p)
            sscanf(p, "'%15[^']'", d);
        rc = fail(msg, msg_size,
                  "array dtype is '%s'; float32 little-endian ('<f4') is required",
                  d);
        goto out;
    }
    p = find_key(h, "fortran_order");
    if (!p || strncmp(p, "False", 5) != 0) {
        rc = fail(msg, msg_size, "Fortran-order arrays are not supported; "
                                 "save a C-order array");
        goto out;
    }
    p = find_key(h, "shape");
    if (!p || *p != '(') {
        rc = fail(msg, msg_size, "malformed .npy header: no shape");
        goto out;
    }
    p++;
    size_t count = 1;
    for (;;) {
        while (isspace((unsigned char)*p) || *p == ',')
            p++;
        if (*p == ')')
            break;
        if (!isdigit((unsigned char)*p) || arr->rank == NPY_MAX_RANK) {
            rc = fail(msg, msg_size, "malformed or too deep .npy shape");
            goto out;
        }
        errno = 0;
        char *end;
        unsigned long long d = strtoull(p, &end, 10);
        if (errno || d > (1ull << 40) || (d && count > SIZE_MAX / 4 / d)) {
            rc = fail(msg, msg_size, "implausible .npy shape");
            goto out;
        }
        arr->dims[arr->rank++] = (int64_t)d;
        count *= (size_t)d;
        p = end;
    }
    size_t data_off = hoff + hlen;
    if (size - data_off != count * sizeof(float)) {
        rc = fail(msg, msg_size,
                  ".npy data holds %zu bytes, the shape needs %zu",
                  size - data_off, count * sizeof(float));
        goto out;
    }
    arr->data = malloc(count ? count * sizeof(float) : 1);
    if (!arr->data) {
        rc = fail(msg, msg_size, "out of memory");
        goto out;
    }
    memcpy(arr->data, b + data_off, count * sizeof(float));
    arr->count = count;
out:
    free(h);
    if (rc)
        npy_free(arr);
    return rc;
}

int npy_read(const char *path, npy_array_t *arr, char *msg, size_t msg_size)
{
    memset(arr, 0, sizeof *arr);
    void *buf;
    size_t size;
    int rc = util_read_file(path, &buf, &size);
    if (rc)
        return fail(msg, msg_size, "cannot open '%s': %s", path, strerror(-rc));
    rc = npy_parse(buf, size, arr, msg, msg_size);
    free(buf);
    return rc;
}

int npy_write(const char *path, const float *data, int rank,
              const int64_t *dims, char *msg, size_t msg_size)
{
    char shape[256] = "";
    size_t used = 0, count = 1;
    for (int i = 0; i < rank; i++) {
        used += (size_t)snprintf(shape + used, sizeof shape - used, "%lld,%s",
                                 (long long)dims[i], i + 1 < rank ? " " : "");
        count *= (size_t)dims[i];
    }
    if (rank > 1)
        shape[used - 1] = '\0'; /* numpy writes (2, 3) but (5,) */
    char header[400];
    int n = snprintf(header, sizeof header,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }",
                     shape);
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f)
        return fail(msg, msg_size, "cannot create '%s': %s", path,
                    strerror(errno));
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    size_t hlen = (size_t)n + pad + 1;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    int ok = fwrite(pre, 1, 10, f) == 10 &&
             fwrite(header, 1, (size_t)n, f) == (size_t)n;
    for (size_t i = 0; ok && i < pad; i++)
        ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ok = ok && fwrite(data, sizeof(float), count, f) == count;
    ok = (fclose(f) == 0) && ok;
    if (!ok)
        return fail(msg, msg_size, "cannot write '%s': %s", path,
                    strerror(errno));
    return 0;
}
