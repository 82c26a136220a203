/* The model repository; see repository.h. */
#include "serve/repository.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/clock.h"

struct repository {
    uv_loop_t *loop;
    repo_config_t cfg;
    const logger_t *log;
    telemetry_t *tel;
    model_slot_t *slots;
    int n_slots, cap_slots;
    int loads_in_flight;
    int rescan;      /* a scan came while loads were in flight */
    int first_done;  /* the first scan's loads are over */
    int stopping;
};

ic_err_t repo_create(repository_t **out, uv_loop_t *loop, const repo_config_t *cfg,
                     const logger_t *log, telemetry_t *tel)
{
    repository_t *r = calloc(1, sizeof *r);
    *out = r;
    if (!r)
        return IC_ENOMEM;
    r->loop = loop;
    r->cfg = *cfg;
    r->log = log;
    r->tel = tel;
    return IC_OK;
}

/* ---- served models ---------------------------------------------------------------- */

static void served_free(served_model_t *m)
{
    if (!m)
        return;
    sched_free(m->sched); /* runs what is still queued */
    classifier_close(m->c);
    free(m);
}

void repo_ref(served_model_t *m)
{
    m->refs++;
}

void repo_unref(served_model_t *m)
{
    if (!m || --m->refs > 0)
        return;
    log_msg(m->repo->log, LOG_INFO, "model %s version %s unloaded", m->c->name,
            m->c->cfg.version);
    served_free(m);
}

static void on_batch(int size, double infer_s, void *arg)
{
    const served_model_t *m = arg;
    telemetry_batch(m->repo->tel, m->c->name, m->c->cfg.version, size, infer_s);
}

/* Opens the folder, starts its instances and warms them up (on a worker
 * thread: touches nothing of the repository but its settings). */
static ic_err_t served_load(served_model_t **out, repository_t *r, const char *name,
                            char *msg, size_t msg_size)
{
    *out = NULL;
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s/%s", r->cfg.models_dir, name) >= (int)sizeof dir) {
        snprintf(msg, msg_size, "model folder path too long");
        return IC_EMODEL;
    }
    int64_t t0 = clock_now_ns();
    served_model_t *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(msg, msg_size, "out of memory");
        return IC_ENOMEM;
    }
    m->repo = r;
    ic_err_t rc = classifier_open(&m->c, dir, name, &r->cfg.limits, msg, msg_size);
    if (rc == IC_OK)
        rc = sched_create(&m->sched, m->c, &m->c->cfg.batching, r->cfg.job_done,
                          r->cfg.job_done_arg, on_batch, m, msg, msg_size);
    if (rc == IC_OK)
        rc = sched_warm_up(m->sched, msg, msg_size);
    if (rc != IC_OK) {
        served_free(m);
        return rc;
    }
    m->load_seconds = (double)(clock_now_ns() - t0) / 1e9;
    *out = m;
    return IC_OK;
}

/* ---- slots ------------------------------------------------------------------------ */

model_slot_t *repo_find(repository_t *r, const char *name)
{
    for (int i = 0; i < r->n_slots; i++)
        if (strcmp(r->slots[i].name, name) == 0)
            return &r->slots[i];
    return NULL;
}

int repo_count(const repository_t *r)
{
    return r->n_slots;
}

model_slot_t *repo_slot(repository_t *r, int i)
{
    return &r->slots[i];
}

int repo_loading(const repository_t *r)
{
    return r->loads_in_flight;
}

int repo_ready(const repository_t *r, const char **why)
{
    if (!r->first_done) {
        *why = "loading models";
        return 0;
    }
    for (int i = 0; i < r->n_slots; i++)
        if (!r->slots[i].current && !r->slots[i].loading) {
            *why = "a model failed to load";
            return 0;
        }
    if (r->n_slots == 0) {
        *why = "no models";
        return 0;
    }
    *why = "ready";
    return 1;
}

/* The first scan's loads are over: say so once. */
static void note_first_loaded(repository_t *r)
{
    if (r->first_done)
        return;
    r->first_done = 1;
    if (r->cfg.first_loaded)
        r->cfg.first_loaded(r->cfg.arg);
}

static model_slot_t *add_slot(repository_t *r, const char *name)
{
    if (r->n_slots == r->cap_slots) {
        int cap = r->cap_slots ? 2 * r->cap_slots : 8;
        model_slot_t *s = realloc(r->slots, (size_t)cap * sizeof *s);
        if (!s)
            return NULL;
        r->slots = s;
        r->cap_slots = cap;
    }
    model_slot_t *s = &r->slots[r->n_slots];
    memset(s, 0, sizeof *s);
    if (!(s->name = strdup(name)))
        return NULL;
    r->n_slots++;
    return s;
}

static void drop_slot(repository_t *r, int i)
{
    model_slot_t *s = &r->slots[i];
    repo_unref(s->current);
    free(s->name);
    free(s->last_error);
    r->slots[i] = r->slots[--r->n_slots];
}

/* ---- loading ---------------------------------------------------------------------- */

typedef struct load_job {
    uv_work_t work;
    repository_t *repo;
    char *name;
    served_model_t *result;
    char msg[1024];
} load_job_t;

static void load_work(uv_work_t *w)
{
    load_job_t *lj = w->data;
    served_load(&lj->result, lj->repo, lj->name, lj->msg, sizeof lj->msg);
}

static void swap_in(repository_t *r, model_slot_t *slot, served_model_t *m)
{
    served_model_t *old = slot->current;
    m->refs = 1;
    slot->current = m;
    free(slot->last_error);
    slot->last_error = NULL;
    telemetry_model_ready(r->tel, slot->name, 1);
    log_msg(r->log, LOG_INFO, "model %s version %s loaded in %.2f s (%s)", slot->name,
            m->c->cfg.version, m->load_seconds, old ? "swapped in" : "new");
    repo_unref(old);
}

static void record_failure(repository_t *r, model_slot_t *slot, const char *name,
                           const char *msg)
{
    if (slot) {
        free(slot->last_error);
        slot->last_error = strdup(msg); /* NULL without memory: only the text is lost */
    }
    telemetry_model_load_failed(r->tel, name);
    if (!slot || !slot->current)
        telemetry_model_ready(r->tel, name, 0);
    log_msg(r->log, LOG_ERROR, "model %s failed to load: %s%s", name, msg,
            slot && slot->current ? " (the previous version keeps serving)" : "");
}

static void load_done(uv_work_t *w, int status)
{
    load_job_t *lj = w->data;
    repository_t *r = lj->repo;
    model_slot_t *slot = repo_find(r, lj->name);
    r->loads_in_flight--;
    if (status == UV_ECANCELED && !lj->result)
        snprintf(lj->msg, sizeof lj->msg, "load cancelled");
    if (slot)
        slot->loading = 0;
    if (r->stopping)
        served_free(lj->result); /* nothing will serve it */
    else if (lj->result && slot)
        swap_in(r, slot, lj->result);
    else {
        served_free(lj->result);
        record_failure(r, slot, lj->name, lj->result ? "removed while loading" : lj->msg);
    }
    free(lj->name);
    free(lj);
    if (r->loads_in_flight > 0 || r->stopping)
        return;
    note_first_loaded(r);
    if (r->rescan) {
        r->rescan = 0;
        repo_scan(r); /* settles when its own loads are over */
        return;
    }
    if (r->cfg.settled)
        r->cfg.settled(r->cfg.arg);
}

static void start_load(repository_t *r, model_slot_t *slot)
{
    load_job_t *lj = calloc(1, sizeof *lj);
    if (!lj || !(lj->name = strdup(slot->name))) {
        free(lj);
        log_msg(r->log, LOG_ERROR, "out of memory loading model %s", slot->name);
        return;
    }
    lj->repo = r;
    lj->work.data = lj;
    if (uv_queue_work(r->loop, &lj->work, load_work, load_done) != 0) {
        log_msg(r->log, LOG_ERROR, "cannot start loading model %s", slot->name);
        free(lj->name);
        free(lj);
        return;
    }
    slot->loading = 1;
    r->loads_in_flight++;
}

/* A folder is a model when it holds config.json or model.onnx. */
static int is_model_dir(const char *models_dir, const char *name)
{
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", models_dir, name);
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return 0;
    snprintf(path, sizeof path, "%s/%s/config.json", models_dir, name);
    if (stat(path, &sb) == 0)
        return 1;
    snprintf(path, sizeof path, "%s/%s/model.onnx", models_dir, name);
    return stat(path, &sb) == 0;
}

/* The folder's model, unless what serves was loaded from the same files. */
static void scan_folder(repository_t *r, const char *name)
{
    model_slot_t *slot = repo_find(r, name);
    if (!slot && !(slot = add_slot(r, name))) {
        log_msg(r->log, LOG_ERROR, "out of memory adding model %s", name);
        return;
    }
    telemetry_model_seen(r->tel, slot->name);
    if (!slot->current)
        telemetry_model_ready(r->tel, slot->name, 0);
    slot->present = 1;
    if (slot->current) {
        model_stamp_t st;
        model_stamp_read(slot->current->c->dir, &st);
        if (model_stamp_equal(&st, &slot->current->c->stamp))
            return;
    }
    start_load(r, slot);
}

void repo_scan(repository_t *r)
{
    if (r->loads_in_flight > 0) {
        r->rescan = 1;
        return;
    }
    DIR *d = opendir(r->cfg.models_dir);
    if (!d) {
        log_msg(r->log, LOG_ERROR, "cannot read the model repository %s: %s",
                r->cfg.models_dir, strerror(errno));
    } else {
        for (int i = 0; i < r->n_slots; i++)
            r->slots[i].present = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.' && is_model_dir(r->cfg.models_dir, e->d_name))
                scan_folder(r, e->d_name);
        closedir(d);
        for (int i = 0; i < r->n_slots;) {
            model_slot_t *s = &r->slots[i];
            if (s->present || s->loading) {
                i++;
                continue;
            }
            log_msg(r->log, LOG_INFO, "model %s removed from the repository", s->name);
            telemetry_model_removed(r->tel, s->name);
            drop_slot(r, i);
        }
    }
    if (r->loads_in_flight > 0)
        return;
    note_first_loaded(r);
    if (r->cfg.settled)
        r->cfg.settled(r->cfg.arg);
}

/* ---- the rest --------------------------------------------------------------------- */

void repo_expire(repository_t *r, int64_t now_ns)
{
    for (int i = 0; i < r->n_slots; i++)
        if (r->slots[i].current)
            sched_expire(r->slots[i].current->sched, now_ns);
}

void repo_stop(repository_t *r)
{
    r->stopping = 1;
}

void repo_free(repository_t *r)
{
    if (!r)
        return;
    while (r->n_slots > 0)
        drop_slot(r, r->n_slots - 1);
    free(r->slots);
    free(r);
}
