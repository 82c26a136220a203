/* The error model (src/classify/error.c) and its one mapping to HTTP
 * statuses (src/http/status.c), as README.md ("Errors are JSON ...") and
 * openapi.yaml document it: 400 a bad image, body or parameter; 404 no
 * such model; 413 too large or too many; 415 not JPEG/PNG or an
 * unsupported Content-Type; 499 the client went away; 503 out of memory,
 * not loaded, queue full, shutting down; 504 deadline passed in the queue;
 * 500 the rest. */
#include <stdio.h>
#include <string.h>

#include "classify/error.h"
#include "http/status.h"
#include "util/testutil.h"

/* The table as error.h declares it, read through the same X-macro. */
static const struct {
    ic_err_t code;
    const char *name, *text;
} TABLE[] = {
#define X(code, text) {code, #code, text},
    IC_ERRORS(X)
#undef X
};
#define N_TABLE ((int)(sizeof TABLE / sizeof TABLE[0]))

/* The documented status of every code, written out here on purpose (not
 * derived from status.c): a code added to error.h without a line here
 * fails http_statuses. */
static const struct {
    ic_err_t code;
    int status;
} STATUS[] = {
    {IC_OK, 200},
    /* 400: a bad image, body or parameter */
    {IC_EIMAGE_CORRUPT, 400},
    {IC_EIMAGE_SMALL, 400},
    {IC_EPREPROCESS, 400},
    {IC_EBODY_EMPTY, 400},
    {IC_EBODY_MALFORMED, 400},
    {IC_EPARAM, 400},
    /* 404 */
    {IC_ENO_MODEL, 404},
    /* 413: too large, too many */
    {IC_EIMAGE_LARGE, 413},
    {IC_EBODY_TOO_LARGE, 413},
    {IC_ETOO_MANY_IMAGES, 413},
    /* 415: not JPEG or PNG, unsupported Content-Type */
    {IC_EIMAGE_FORMAT, 415},
    {IC_EBODY_TYPE, 415},
    /* 499: the client went away */
    {IC_ECANCELLED, 499},
    /* 503: retry later */
    {IC_ENOMEM, 503},
    {IC_ENOT_LOADED, 503},
    {IC_EQUEUE_FULL, 503},
    {IC_ESHUTDOWN, 503},
    /* 504 */
    {IC_EDEADLINE, 504},
    /* 500: the server's own failures */
    {IC_ESYSTEM, 500},
    {IC_ECONFIG, 500},
    {IC_EMODEL, 500},
    {IC_EINFER, 500},
};
#define N_STATUS ((int)(sizeof STATUS / sizeof STATUS[0]))

START_TEST(texts_and_names)
{
    ck_assert_int_eq(IC_OK, 0);
    ck_assert_int_eq(N_TABLE, IC_ERROR_COUNT);
    for (int i = 0; i < N_TABLE; i++) {
        ck_assert_int_eq(TABLE[i].code, i); /* the enum follows the table */
        const char *text = ic_strerror(TABLE[i].code), *name = ic_errname(TABLE[i].code);
        ck_assert_ptr_nonnull(text);
        ck_assert_ptr_nonnull(name);
        ck_assert_str_eq(text, TABLE[i].text);
        ck_assert_str_eq(name, TABLE[i].name);
        ck_assert_msg(strncmp(name, "IC_", 3) == 0 && text[0], "%d: '%s' '%s'", i, name, text);
        /* Texts go into messages and logs as they are: one line. */
        ck_assert_msg(!strchr(text, '\n'), "%s: a line break in its text", name);
        for (int j = 0; j < i; j++) {
            ck_assert_msg(strcmp(text, ic_strerror(TABLE[j].code)) != 0,
                          "%s and %s share a text", name, TABLE[j].name);
            ck_assert_msg(strcmp(name, ic_errname(TABLE[j].code)) != 0, "%s twice", name);
        }
    }
    /* Outside the table. */
    const ic_err_t outside[] = {IC_ERROR_COUNT, (ic_err_t)(IC_ERROR_COUNT + 1), (ic_err_t)-1,
                                (ic_err_t)1000000};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        ck_assert_str_eq(ic_strerror(outside[i]), "unknown error");
        ck_assert_str_eq(ic_errname(outside[i]), "IC_E?");
    }
}
END_TEST

START_TEST(http_statuses)
{
    for (int code = 0; code < IC_ERROR_COUNT; code++) {
        int want = -1;
        for (int k = 0; k < N_STATUS; k++)
            if ((int)STATUS[k].code == code)
                want = STATUS[k].status;
        ck_assert_msg(want != -1, "%s: no documented status in this test", ic_errname(code));
        int got = http_status((ic_err_t)code);
        ck_assert_msg(got == want, "%s: HTTP %d, documented %d", ic_errname(code), got, want);
    }
    ck_assert_int_eq(N_STATUS, IC_ERROR_COUNT); /* and no code twice */
    ck_assert_int_eq(HTTP_CLIENT_CLOSED, 499);
    /* Outside the table: a server error. */
    ck_assert_int_eq(http_status(IC_ERROR_COUNT), 500);
    ck_assert_int_eq(http_status((ic_err_t)-1), 500);
    ck_assert_int_eq(http_status((ic_err_t)1000000), 500);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, texts_and_names);
    tcase_add_test(tc, http_statuses);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
