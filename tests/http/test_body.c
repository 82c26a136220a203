/* Request bodies (src/http/body.c) without a connection: raw bodies fed in
 * pieces and their Content-Type, the size limit, JSON instances, and form
 * fields handed to body_form_field the way libmicrohttpd's post processor
 * does (MHD_PostDataIterator: a file's pieces in order, offset 0 starting
 * the next one).
 *
 * Not here: body_start_form and body_images on a form need a real post
 * processor, which libmicrohttpd only makes for a live connection (it reads
 * the Content-Type and boundary from the request); multipart bodies from
 * end to end are the daemon suites' (tests/e2e/test_api.c, tests/nn/test_hostile.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/body.h"
#include "util/testutil.h"

/* Feeds text in pieces of `piece` bytes (0: one piece). */
static void feed(body_t *b, const char *data, size_t size, size_t piece)
{
    if (piece == 0)
        piece = size ? size : 1;
    for (size_t at = 0; at < size; at += piece) {
        size_t n = size - at < piece ? size - at : piece;
        ck_assert_int_eq(body_feed(b, data + at, n), IC_OK);
    }
}

static void feed_str(body_t *b, const char *s, size_t piece)
{
    feed(b, s, strlen(s), piece);
}

/* ---- raw bodies ------------------------------------------------------------------- */

/* Some bytes of a pretend image (the body layer does not decode). */
static const char RAW[] = "\x89PNG\r\n\x1a\n some bytes that stand for an image \x00\x01\x02";
#define RAW_LEN (sizeof RAW - 1)

/* The accepted types, with parameters, in any case, or none at all. */
START_TEST(raw_types_accepted)
{
    static const char *const types[] = {
        "image/jpeg", "image/png", "image/jpg", "IMAGE/PNG", "Image/Jpeg",
        "image/png; charset=binary", "image/jpeg;q=0.9", "image/png ; x=y",
        "application/octet-stream", "Application/Octet-Stream", "", NULL,
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        body_t b;
        body_init(&b, 1 << 20, 4);
        feed(&b, RAW, RAW_LEN, 1 + i % 7); /* pieces of 1 to 7 bytes */
        int top_k = 42;
        char msg[256] = "";
        ic_err_t rc = body_images(&b, types[i], 0, &top_k, msg, sizeof msg);
        ck_assert_msg(rc == IC_OK, "type '%s': %s: %s", types[i] ? types[i] : "(none)",
                      ic_errname(rc), msg);
        ck_assert_int_eq(b.n_parts, 1);
        ck_assert_uint_eq(b.parts[0].size, RAW_LEN);
        ck_assert(memcmp(b.parts[0].data, RAW, RAW_LEN) == 0);
        ck_assert_ptr_null(b.parts[0].owned); /* points into the body */
        ck_assert_int_eq(top_k, 42);          /* untouched */
        body_free(&b);
    }
}
END_TEST

/* Other types are refused (IC_EBODY_TYPE, naming the type) unless any_type. */
START_TEST(raw_types_refused)
{
    static const char *const types[] = {
        "text/plain", "text/plain; charset=utf-8", "image/gif", "image/pngx",
        "image", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        body_t b;
        body_init(&b, 1 << 20, 4);
        feed(&b, RAW, RAW_LEN, 5);
        int top_k = 0;
        char msg[256] = "";
        ic_err_t rc = body_images(&b, types[i], 0, &top_k, msg, sizeof msg);
        ck_assert_msg(rc == IC_EBODY_TYPE, "type '%s': %s", types[i], ic_errname(rc));
        ck_assert_int_eq(b.n_parts, 0);
        /* The message names the media type, without its parameters. */
        char want[128];
        snprintf(want, sizeof want, "'%.*s'", (int)strcspn(types[i], ";"), types[i]);
        ck_assert_msg(strstr(msg, want) != NULL, "message '%s' lacks %s", msg, want);
        body_free(&b);

        /* any_type: the same body is an image whatever it says. */
        body_init(&b, 1 << 20, 4);
        feed(&b, RAW, RAW_LEN, 0);
        rc = body_images(&b, types[i], 1, &top_k, msg, sizeof msg);
        ck_assert_msg(rc == IC_OK, "any_type, '%s': %s", types[i], ic_errname(rc));
        ck_assert_int_eq(b.n_parts, 1);
        ck_assert_uint_eq(b.parts[0].size, RAW_LEN);
        body_free(&b);
    }
}
END_TEST

/* HTTP allows tabs as well as spaces around the ';' of parameters (OWS,
 * RFC 9110 section 5.6.6). */
START_TEST(type_tab_before_parameters)
{
    body_t b;
    body_init(&b, 1000, 4);
    feed(&b, RAW, RAW_LEN, 0);
    int top_k = 0;
    char msg[256] = "";
    ic_err_t rc = body_images(&b, "image/png\t; q=1", 0, &top_k, msg, sizeof msg);
    ck_assert_msg(rc == IC_OK, "%s: %s", ic_errname(rc), msg);
    body_free(&b);
    body_init(&b, 1000, 4);
    feed_str(&b, "{\"instances\": [{\"b64\": \"aGk=\"}]}", 0);
    rc = body_images(&b, "application/json\t;charset=utf-8", 0, &top_k, msg, sizeof msg);
    ck_assert_msg(rc == IC_OK && b.n_parts == 1 && b.parts[0].size == 2, "%s: %s",
                  ic_errname(rc), msg);
    body_free(&b);
}
END_TEST

START_TEST(empty_body)
{
    static const char *const types[] = {"image/png", NULL, "application/json", "text/plain"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        for (int any = 0; any < 2; any++) {
            body_t b;
            body_init(&b, 1000, 4); /* nothing fed (see empty_pieces for "") */
            int top_k = 0;
            char msg[256] = "";
            ic_err_t rc = body_images(&b, types[i], any, &top_k, msg, sizeof msg);
            ck_assert_msg(rc == IC_EBODY_EMPTY, "%s", ic_errname(rc));
            ck_assert_str_ne(msg, "");
            ck_assert_int_eq(b.n_parts, 0);
            body_free(&b);
        }
    }
}
END_TEST

/* Empty pieces between others change nothing. */
START_TEST(empty_pieces)
{
    body_t b;
    body_init(&b, 1000, 4);
    feed_str(&b, "ab", 0);
    ck_assert_int_eq(body_feed(&b, "", 0), IC_OK);
    ck_assert_int_eq(body_feed(&b, "x", 0), IC_OK);
    feed_str(&b, "cd", 0);
    int top_k = 0;
    char msg[256] = "";
    ck_assert_int_eq(body_images(&b, "image/png", 0, &top_k, msg, sizeof msg), IC_OK);
    ck_assert_uint_eq(b.parts[0].size, 4);
    ck_assert(memcmp(b.parts[0].data, "abcd", 4) == 0);
    body_free(&b);
}
END_TEST

/* An empty piece is nothing, even before the body has a buffer (fails
 * under UBSan when body_feed computes an offset from a NULL buffer). */
START_TEST(empty_piece_first)
{
    body_t b;
    body_init(&b, 1000, 4);
    ck_assert_int_eq(body_feed(&b, "", 0), IC_OK);
    int top_k = 0;
    char msg[256] = "";
    ck_assert_int_eq(body_images(&b, "image/png", 0, &top_k, msg, sizeof msg),
                     IC_EBODY_EMPTY);
    body_free(&b);
}
END_TEST

/* Exactly max_bytes is fine; one more byte is IC_EBODY_TOO_LARGE, the rest
 * is dropped and the buffer stops growing. */
START_TEST(too_large)
{
    enum { MAX = 1000 };
    char data[3 * MAX];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)('a' + i % 26);

    body_t b;
    body_init(&b, MAX, 4);
    feed(&b, data, MAX, 333);
    ck_assert_int_eq(b.too_large, 0);
    int top_k = 0;
    char msg[256] = "";
    ck_assert_int_eq(body_images(&b, "image/png", 0, &top_k, msg, sizeof msg), IC_OK);
    ck_assert_uint_eq(b.parts[0].size, MAX);
    body_free(&b);

    body_init(&b, MAX, 4);
    feed(&b, data, 600, 0);
    size_t cap = b.cap;
    feed(&b, data + 600, 401, 0); /* 1001 bytes */
    ck_assert_int_eq(b.too_large, 1);
    ck_assert_uint_le(b.len, MAX);
    ck_assert_uint_eq(b.cap, cap);
    feed(&b, data, sizeof data, 100); /* keeps reading, keeps dropping */
    feed(&b, "x", 1, 0);
    ck_assert_uint_le(b.len, MAX);
    ck_assert_uint_eq(b.cap, cap);
    ic_err_t rc = body_images(&b, "image/png", 0, &top_k, msg, sizeof msg);
    ck_assert_int_eq(rc, IC_EBODY_TOO_LARGE);
    ck_assert_msg(strstr(msg, "1000") != NULL, "message: %s", msg);
    ck_assert_int_eq(b.n_parts, 0);
    body_free(&b);

    /* Whatever the type, a body over the limit is too large first. */
    body_init(&b, MAX, 4);
    feed(&b, data, sizeof data, 0); /* one piece over the limit */
    ck_assert_int_eq(b.too_large, 1);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_ptr_null(b.data);
    ck_assert_int_eq(body_images(&b, "application/json", 0, &top_k, msg, sizeof msg),
                     IC_EBODY_TOO_LARGE);
    body_free(&b);
}
END_TEST

/* A large limit fed in small pieces: the buffer never holds more than the
 * limit asks for (it grows by doubling from 64 KiB, so a 1 MiB limit is
 * reached exactly), and the body is whole. */
START_TEST(buffer_growth)
{
    enum { MAX = 1 << 20, PIECE = 4096 };
    char *data = malloc(MAX + PIECE);
    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < MAX + PIECE; i++)
        data[i] = (char)(i * 7 + i / 4096);
    body_t b;
    body_init(&b, MAX, 4);
    feed(&b, data, MAX, PIECE);
    ck_assert_uint_eq(b.len, MAX);
    ck_assert_uint_le(b.cap, MAX);
    ck_assert(memcmp(b.data, data, MAX) == 0);
    feed(&b, data + MAX, PIECE, 0);
    ck_assert_int_eq(b.too_large, 1);
    ck_assert_uint_le(b.cap, MAX);
    body_free(&b);
    free(data);
}
END_TEST

/* ---- JSON ------------------------------------------------------------------------- */

/* body_images on a JSON text fed in pieces of 3 bytes. */
static ic_err_t json_body(body_t *b, const char *json, int max_parts, int *top_k, char *msg,
                          size_t msg_size)
{
    body_init(b, 1 << 20, max_parts);
    feed_str(b, json, 3);
    return body_images(b, "application/json", 0, top_k, msg, msg_size);
}

START_TEST(json_instances)
{
    body_t b;
    int top_k = 7;
    char msg[256] = "";
    /* "hello", "world!" (URL-safe alphabet, no padding, a line break). */
    ic_err_t rc = json_body(&b,
                            "{\"instances\": [{\"b64\": \"aGVsbG8=\"},"
                            " {\"b64\": \"d29y\\nbGQh\"}, {\"b64\": \"_-8\"}]}",
                            4, &top_k, msg, sizeof msg);
    ck_assert_msg(rc == IC_OK, "%s: %s", ic_errname(rc), msg);
    ck_assert_int_eq(b.n_parts, 3);
    ck_assert_uint_eq(b.parts[0].size, 5);
    ck_assert(memcmp(b.parts[0].data, "hello", 5) == 0);
    ck_assert_uint_eq(b.parts[1].size, 6);
    ck_assert(memcmp(b.parts[1].data, "world!", 6) == 0);
    ck_assert_uint_eq(b.parts[2].size, 2);
    ck_assert(b.parts[2].data[0] == 0xff && b.parts[2].data[1] == 0xef);
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_eq(b.parts[i].data, b.parts[i].owned);
    ck_assert_int_eq(top_k, 7); /* absent: left alone */
    body_free(&b);

    /* The media type's case and parameters do not matter. */
    static const char *const types[] = {"Application/JSON", "application/json; charset=utf-8"};
    for (int i = 0; i < 2; i++) {
        body_init(&b, 1000, 4);
        feed_str(&b, "{\"instances\": [{\"b64\": \"aGk=\"}]}", 0);
        rc = body_images(&b, types[i], 0, &top_k, msg, sizeof msg);
        ck_assert_msg(rc == IC_OK, "%s: %s", types[i], ic_errname(rc));
        ck_assert_int_eq(b.n_parts, 1);
        ck_assert(b.parts[0].size == 2 && memcmp(b.parts[0].data, "hi", 2) == 0);
        body_free(&b);
    }
}
END_TEST

START_TEST(json_top_k)
{
    static const struct {
        const char *value;
        int want;
    } cases[] = {
        {"3", 3}, {"1", 1}, {"1000", 1000}, {"0", -1}, {"-5", -1},
        {"-9223372036854775808", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[200];
        snprintf(json, sizeof json, "{\"top_k\": %s, \"instances\": [{\"b64\": \"aGk=\"}]}",
                 cases[i].value);
        body_t b;
        int top_k = 99;
        char msg[256] = "";
        ic_err_t rc = json_body(&b, json, 4, &top_k, msg, sizeof msg);
        ck_assert_msg(rc == IC_OK, "top_k %s: %s: %s", cases[i].value, ic_errname(rc), msg);
        ck_assert_msg(top_k == cases[i].want, "top_k %s gave %d", cases[i].value, top_k);
        body_free(&b);
    }
    /* Beyond int: out of range, never wrapped into a small count. */
    static const char *const huge[] = {"4294967297", "2147483648", "9223372036854775807"};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        char json[200];
        snprintf(json, sizeof json, "{\"top_k\": %s, \"instances\": [{\"b64\": \"aGk=\"}]}",
                 huge[i]);
        body_t b;
        int top_k = 99;
        char msg[256] = "";
        ck_assert_int_eq(json_body(&b, json, 4, &top_k, msg, sizeof msg), IC_OK);
        ck_assert_msg(top_k == -1 || top_k >= 1000000000, "top_k %s gave %d", huge[i], top_k);
        body_free(&b);
    }
    /* Not an integer: IC_EPARAM, naming the field. */
    static const char *const bad[] = {"\"3\"", "2.5", "null", "true", "[3]", "{}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char json[200];
        snprintf(json, sizeof json, "{\"instances\": [{\"b64\": \"aGk=\"}], \"top_k\": %s}",
                 bad[i]);
        body_t b;
        int top_k = 99;
        char msg[256] = "";
        ic_err_t rc = json_body(&b, json, 4, &top_k, msg, sizeof msg);
        ck_assert_msg(rc == IC_EPARAM, "top_k %s: %s", bad[i], ic_errname(rc));
        ck_assert_msg(strstr(msg, "top_k") != NULL, "message: %s", msg);
        ck_assert_int_eq(top_k, 99);
        body_free(&b);
    }
}
END_TEST

START_TEST(json_too_many)
{
    body_t b;
    int top_k = 0;
    char msg[256] = "";
    ic_err_t rc = json_body(&b, "{\"instances\": [{\"b64\": \"YQ==\"}, {\"b64\": \"Yg==\"}]}",
                            2, &top_k, msg, sizeof msg);
    ck_assert_int_eq(rc, IC_OK);
    ck_assert_int_eq(b.n_parts, 2);
    body_free(&b);
    rc = json_body(&b,
                   "{\"instances\": [{\"b64\": \"YQ==\"}, {\"b64\": \"Yg==\"}, {\"b64\": \"Yw==\"}]}",
                   2, &top_k, msg, sizeof msg);
    ck_assert_int_eq(rc, IC_ETOO_MANY_IMAGES);
    ck_assert_msg(strstr(msg, "3") && strstr(msg, "2"), "message: %s", msg);
    body_free(&b);
}
END_TEST

/* Bad base64, JSON that does not parse, or the wrong shape: each
 * IC_EBODY_MALFORMED with a message saying where. */
START_TEST(json_malformed)
{
    static const struct {
        const char *json;
        const char *in_msg;
    } cases[] = {
        {"{\"instances\": [{\"b64\": \"@@@@\"}]}", "instances[0].b64 is not valid base64"},
        {"{\"instances\": [{\"b64\": \"aGk=\"}, {\"b64\": \"aGk=x\"}]}",
         "instances[1].b64 is not valid base64"},
        {"{\"instances\": [{\"b64\": \"a\"}]}", "instances[0].b64"},
        {"{\"instances\": [{\"b64\": \"aGk===\"}]}", "instances[0].b64"},
        {"{\"instances\": [", "invalid JSON at line 1"},
        {"{\"instances\": [{\"b64\": \"aGk=\"}]} trailing", "invalid JSON"},
        {"not json", "invalid JSON"},
        {"{\"instances\": [], \"instances\": []}", "invalid JSON"}, /* duplicate key */
        {"{\"instances\": []}", "{\"instances\""},
        {"{\"images\": [{\"b64\": \"aGk=\"}]}", "{\"instances\""},
        {"[{\"b64\": \"aGk=\"}]", "{\"instances\""},
        {"{\"instances\": {\"b64\": \"aGk=\"}}", "{\"instances\""},
        {"{\"instances\": [\"aGk=\"]}", "instances[0] must be"},
        {"{\"instances\": [{\"b64\": \"aGk=\"}, {\"data\": \"aGk=\"}]}", "instances[1] must be"},
        {"{\"instances\": [{\"b64\": 12}]}", "instances[0] must be"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        body_t b;
        int top_k = 0;
        char msg[256] = "";
        ic_err_t rc = json_body(&b, cases[i].json, 4, &top_k, msg, sizeof msg);
        ck_assert_msg(rc == IC_EBODY_MALFORMED, "%s: %s (%s)", cases[i].json, ic_errname(rc),
                      msg);
        ck_assert_msg(strstr(msg, cases[i].in_msg) != NULL, "%s: message '%s' lacks '%s'",
                      cases[i].json, msg, cases[i].in_msg);
        body_free(&b);
    }
}
END_TEST

/* ---- forms ------------------------------------------------------------------------ */

/* One call as the post processor makes it; returns body_form_field's. */
static int field(body_t *b, const char *key, const char *filename, const char *type,
                 const char *data, uint64_t off)
{
    return body_form_field(b, key, filename, type, data, off, strlen(data));
}

static void assert_part(const body_t *b, int i, const char *want)
{
    ck_assert_int_gt(b->n_parts, i);
    ck_assert_uint_eq(b->parts[i].size, strlen(want));
    ck_assert_ptr_eq(b->parts[i].data, b->parts[i].owned);
    ck_assert(memcmp(b->parts[i].data, want, strlen(want)) == 0);
}

/* Files in several pieces, offset 0 starting the next one; top_k in
 * pieces; other fields ignored. */
START_TEST(form_fields)
{
    body_t b;
    body_init(&b, 1000, 8);
    ck_assert_int_eq(field(&b, "image", "a.png", "image/png", "first-", 0), 1);
    ck_assert_int_eq(field(&b, "image", "a.png", "image/png", "file-", 6), 1);
    ck_assert_int_eq(field(&b, "image", "a.png", "image/png", "ends", 11), 1);
    ck_assert_int_eq(field(&b, "comment", NULL, NULL, "ignored text", 0), 1);
    ck_assert_int_eq(field(&b, "top_k", NULL, NULL, "1", 0), 1);
    ck_assert_int_eq(field(&b, "top_k", NULL, NULL, "2", 1), 1);
    /* The same name and file name again: offset 0 is a new file. */
    ck_assert_int_eq(field(&b, "image", "a.png", "image/png", "second", 0), 1);
    ck_assert_int_eq(field(&b, "image", "a.png", "image/png", "!", 6), 1);
    /* A file without a content type, and an empty piece. */
    ck_assert_int_eq(field(&b, "other", "b.jpg", NULL, "third", 0), 1);
    ck_assert_int_eq(body_form_field(&b, "other", "b.jpg", NULL, "", 5, 0), 1);
    /* An image content type without a file name counts as a file. */
    ck_assert_int_eq(field(&b, "pic", NULL, "image/jpeg", "fourth", 0), 1);
    ck_assert_int_eq(field(&b, "pic2", NULL, "IMAGE/PNG", "fifth", 0), 1);
    /* A text part with a content type but no file name is a field. */
    ck_assert_int_eq(field(&b, "note", NULL, "text/plain", "not an image", 0), 1);

    ck_assert_int_eq(b.form_error, IC_OK);
    ck_assert_int_eq(b.n_parts, 5);
    assert_part(&b, 0, "first-file-ends");
    assert_part(&b, 1, "second!");
    assert_part(&b, 2, "third");
    assert_part(&b, 3, "fourth");
    assert_part(&b, 4, "fifth");
    ck_assert_int_eq(b.has_top_k, 1);
    ck_assert_str_eq(b.top_k, "12");
    ck_assert_uint_eq(b.len, 0); /* forms keep their files, not the body */
    body_free(&b);

    /* A second top_k field replaces the first. */
    body_init(&b, 1000, 8);
    ck_assert_int_eq(field(&b, "top_k", NULL, NULL, "7", 0), 1);
    ck_assert_int_eq(field(&b, "top_k", NULL, NULL, "3", 0), 1);
    ck_assert_str_eq(b.top_k, "3");
    ck_assert_int_eq(b.n_parts, 0);
    /* No top_k: has_top_k stays 0. */
    body_free(&b);
    body_init(&b, 1000, 8);
    ck_assert_int_eq(field(&b, "x", "x.png", NULL, "data", 0), 1);
    ck_assert_int_eq(b.has_top_k, 0);
    body_free(&b);
}
END_TEST

/* Many files: the part array grows and keeps every file. */
START_TEST(form_many_files)
{
    body_t b;
    body_init(&b, 1000, 40);
    for (int i = 0; i < 40; i++) {
        char name[32], piece[32];
        snprintf(name, sizeof name, "f%d.png", i);
        snprintf(piece, sizeof piece, "file %d", i);
        ck_assert_int_eq(field(&b, "image", name, "image/png", piece, 0), 1);
        ck_assert_int_eq(field(&b, "image", name, "image/png", "+", strlen(piece)), 1);
    }
    ck_assert_int_eq(b.n_parts, 40);
    for (int i = 0; i < 40; i++) {
        char want[32];
        snprintf(want, sizeof want, "file %d+", i);
        assert_part(&b, i, want);
    }
    ck_assert_int_eq(b.form_error, IC_OK);
    body_free(&b);
}
END_TEST

/* One file more than max_parts stops the form: IC_ETOO_MANY_IMAGES, and the
 * first error is the one kept. */
START_TEST(form_too_many_files)
{
    body_t b;
    body_init(&b, 1000, 2);
    ck_assert_int_eq(field(&b, "image", "1.png", "image/png", "one", 0), 1);
    ck_assert_int_eq(field(&b, "image", "2.png", "image/png", "two", 0), 1);
    ck_assert_int_eq(field(&b, "image", "2.png", "image/png", "more", 3), 1);
    ck_assert_int_eq(field(&b, "image", "3.png", "image/png", "three", 0), 0);
    ck_assert_int_eq(b.form_error, IC_ETOO_MANY_IMAGES);
    ck_assert_int_eq(b.n_parts, 2);
    assert_part(&b, 1, "twomore");
    /* An image content type without a file name counts too. */
    ck_assert_int_eq(field(&b, "pic", NULL, "image/jpeg", "x", 0), 0);
    ck_assert_int_eq(b.form_error, IC_ETOO_MANY_IMAGES);
    body_free(&b);

    body_init(&b, 1000, 1);
    ck_assert_int_eq(field(&b, "pic", NULL, "image/jpeg", "x", 0), 1);
    ck_assert_int_eq(field(&b, "pic", NULL, "image/png", "y", 0), 0);
    ck_assert_int_eq(b.form_error, IC_ETOO_MANY_IMAGES);
    body_free(&b);
}
END_TEST

/* A file larger than max_bytes, even in small pieces: IC_EBODY_TOO_LARGE.
 * Each file has the whole limit (the form's body size is checked by
 * body_feed). */
START_TEST(form_file_too_large)
{
    body_t b;
    body_init(&b, 10, 4);
    ck_assert_int_eq(field(&b, "image", "a.png", "image/png", "12345", 0), 1);
    ck_assert_int_eq(field(&b, "image", "a.png", "image/png", "67890", 5), 1); /* 10: fits */
    ck_assert_int_eq(field(&b, "image", "b.png", "image/png", "abcdef", 0), 1);
    ck_assert_int_eq(field(&b, "image", "b.png", "image/png", "ghijk", 6), 0); /* 11 */
    ck_assert_int_eq(b.form_error, IC_EBODY_TOO_LARGE);
    assert_part(&b, 0, "1234567890");
    ck_assert_uint_le(b.parts[1].size, 10);
    /* Later trouble does not replace the first error. */
    ck_assert_int_eq(field(&b, "image", "c.png", "image/png", "0123456789abc", 0), 0);
    ck_assert_int_eq(b.form_error, IC_EBODY_TOO_LARGE);
    body_free(&b);

    /* One piece over the limit at once. */
    body_init(&b, 10, 4);
    ck_assert_int_eq(field(&b, "image", "a.png", NULL, "0123456789a", 0), 0);
    ck_assert_int_eq(b.form_error, IC_EBODY_TOO_LARGE);
    body_free(&b);
}
END_TEST

/* A top_k field too long to be a number stops the form (malformed). */
START_TEST(form_top_k_too_long)
{
    body_t b;
    body_init(&b, 1000, 4);
    char digits[64];
    memset(digits, '9', sizeof digits - 1);
    digits[sizeof digits - 1] = '\0';
    ck_assert_int_eq(field(&b, "top_k", NULL, NULL, "1234567890", 0), 1);
    ck_assert_int_eq(field(&b, "top_k", NULL, NULL, digits, 10), 0);
    ck_assert_int_eq(b.form_error, IC_EBODY_MALFORMED);
    ck_assert_uint_lt(strlen(b.top_k), sizeof b.top_k);
    body_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("body");
    TCase *tc = tcase_create("body");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, raw_types_accepted);
    tcase_add_test(tc, raw_types_refused);
    tcase_add_test(tc, type_tab_before_parameters);
    tcase_add_test(tc, empty_body);
    tcase_add_test(tc, empty_pieces);
    tcase_add_test(tc, empty_piece_first);
    tcase_add_test(tc, too_large);
    tcase_add_test(tc, buffer_growth);
    tcase_add_test(tc, json_instances);
    tcase_add_test(tc, json_top_k);
    tcase_add_test(tc, json_too_many);
    tcase_add_test(tc, json_malformed);
    tcase_add_test(tc, form_fields);
    tcase_add_test(tc, form_many_files);
    tcase_add_test(tc, form_too_many_files);
    tcase_add_test(tc, form_file_too_large);
    tcase_add_test(tc, form_top_k_too_long);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
