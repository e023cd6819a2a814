/* kafkadrain: a librdkafka consumer that fills Arrow-layout buffers, no object per message.
 *
 * Loaded by sluice/native/kafkadrain.py with ctypes (which releases the GIL during each call).
 * Built without linking librdkafka: its symbols resolve at load time against the librdkafka
 * that confluent-kafka ships, loaded first with RTLD_GLOBAL, so both use one copy of it. The
 * declarations below are the ones of librdkafka's rdkafka.h this file uses (its ABI is stable
 * across 1.x and 2.x; the version is checked at run time).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* ---- from rdkafka.h ----------------------------------------------------------------------- */
typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_conf_s rd_kafka_conf_t;
typedef struct rd_kafka_queue_s rd_kafka_queue_t;
typedef struct rd_kafka_topic_s rd_kafka_topic_t;
typedef struct rd_kafka_headers_s rd_kafka_headers_t;
typedef int rd_kafka_resp_err_t;
#define RD_KAFKA_CONSUMER 1
#define RD_KAFKA_CONF_OK 0
#define RD_KAFKA_RESP_ERR__PARTITION_EOF (-191)
typedef struct rd_kafka_message_s {
    rd_kafka_resp_err_t err;
    rd_kafka_topic_t *rkt;
    int32_t partition;
    void *payload;
    size_t len;
    void *key;
    size_t key_len;
    int64_t offset;
    void *_private;
} rd_kafka_message_t;
typedef struct rd_kafka_topic_partition_s {
    char *topic;
    int32_t partition;
    int64_t offset;
    void *metadata;
    size_t metadata_size;
    void *opaque;
    rd_kafka_resp_err_t err;
    void *_private;
} rd_kafka_topic_partition_t;
typedef struct rd_kafka_topic_partition_list_s rd_kafka_topic_partition_list_t;

int rd_kafka_version(void);
rd_kafka_conf_t *rd_kafka_conf_new(void);
int rd_kafka_conf_set(rd_kafka_conf_t *, const char *, const char *, char *, size_t);
void rd_kafka_conf_destroy(rd_kafka_conf_t *);
void rd_kafka_conf_set_opaque(rd_kafka_conf_t *, void *);
void rd_kafka_conf_set_log_cb(rd_kafka_conf_t *,
                              void (*)(const rd_kafka_t *, int, const char *, const char *));
void *rd_kafka_opaque(const rd_kafka_t *);
rd_kafka_t *rd_kafka_new(int, rd_kafka_conf_t *, char *, size_t);
rd_kafka_resp_err_t rd_kafka_poll_set_consumer(rd_kafka_t *);
rd_kafka_queue_t *rd_kafka_queue_get_consumer(rd_kafka_t *);
rd_kafka_topic_partition_list_t *rd_kafka_topic_partition_list_new(int);
rd_kafka_topic_partition_t *rd_kafka_topic_partition_list_add(rd_kafka_topic_partition_list_t *,
                                                              const char *, int32_t);
void rd_kafka_topic_partition_list_destroy(rd_kafka_topic_partition_list_t *);
rd_kafka_resp_err_t rd_kafka_assign(rd_kafka_t *, const rd_kafka_topic_partition_list_t *);
const char *rd_kafka_err2str(rd_kafka_resp_err_t);
ssize_t rd_kafka_consume_batch_queue(rd_kafka_queue_t *, int, rd_kafka_message_t **, size_t);
rd_kafka_message_t *rd_kafka_consume_queue(rd_kafka_queue_t *, int);
int64_t rd_kafka_message_timestamp(const rd_kafka_message_t *, int *);
rd_kafka_resp_err_t rd_kafka_message_headers(const rd_kafka_message_t *, rd_kafka_headers_t **);
size_t rd_kafka_header_cnt(const rd_kafka_headers_t *);
rd_kafka_resp_err_t rd_kafka_header_get_all(const rd_kafka_headers_t *, size_t, const char **,
                                            const void **, size_t *);
void rd_kafka_message_destroy(rd_kafka_message_t *);
rd_kafka_resp_err_t rd_kafka_fatal_error(rd_kafka_t *, char *, size_t);
rd_kafka_resp_err_t rd_kafka_get_watermark_offsets(rd_kafka_t *, const char *, int32_t, int64_t *,
                                                   int64_t *);
rd_kafka_resp_err_t rd_kafka_consumer_close(rd_kafka_t *);
void rd_kafka_queue_destroy(rd_kafka_queue_t *);
void rd_kafka_destroy(rd_kafka_t *);
/* ------------------------------------------------------------------------------------------ */

#define PENDING 10000
#define WAIT_SLICE_MS 20
#define LOGS 64

typedef struct {
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    rd_kafka_message_t *pending[PENDING]; /* consumed, not yet handed out */
    int npending, next;
    int64_t *last; /* per partition: the offset handed out last (-1: none) */
    int nlast;
    pthread_mutex_t lock; /* librdkafka logs from its own threads */
    char logs[LOGS][512];
    int logn[LOGS]; /* syslog level of each */
    int nlogs, dropped_logs;
} kd_t;

/* One fill's buffers (allocated by the caller) and what it found. Mirrored in kafkadrain.py. */
typedef struct {
    int32_t max_rows;
    int32_t want; /* 1: keys, 2: headers, 4: timestamps */
    int64_t cap, key_cap, header_cap; /* bytes in values, keys, headers */
    int32_t *value_offsets; /* max_rows + 1 */
    uint8_t *values, *value_valid;
    int32_t *key_offsets;
    uint8_t *keys, *key_valid;
    int32_t *header_offsets; /* headers: a JSON object of text values each (see headers_json) */
    uint8_t *headers, *header_valid;
    int32_t *partitions;
    int64_t *offsets, *timestamps;
    int32_t *eof; /* max_rows: the partitions that reached their end */
    int32_t *eof_at; /* max_rows: the rows handed out before each end was reported */
    /* out */
    int32_t rows, neof;
    int64_t skipped; /* before the assigned offset (a consumer that went back): left out */
    int64_t need; /* > 0: one message needs this many bytes in that buffer, call again */
    int32_t error, fatal, error_partition;
    int32_t dry; /* the consumer's queue ran empty: every message fetched so far is handed out */
    char message[512];
} kd_fill_t;

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    kd_t *kd = rd_kafka_opaque(rk);
    if (!kd) return;
    pthread_mutex_lock(&kd->lock);
    if (kd->nlogs < LOGS) {
        snprintf(kd->logs[kd->nlogs], sizeof kd->logs[0], "%s: %s", fac, buf);
        kd->logn[kd->nlogs++] = level;
    } else {
        kd->dropped_logs++;
    }
    pthread_mutex_unlock(&kd->lock);
}

int kd_version(void) { return rd_kafka_version(); }

kd_t *kd_open(const char **keys, const char **values, int n, char *err, int errlen) {
    kd_t *kd = calloc(1, sizeof *kd);
    if (!kd) { snprintf(err, errlen, "out of memory"); return NULL; }
    pthread_mutex_init(&kd->lock, NULL);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (int i = 0; i < n; i++) {
        if (rd_kafka_conf_set(conf, keys[i], values[i], err, errlen) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            free(kd);
            return NULL;
        }
    }
    rd_kafka_conf_set_opaque(conf, kd);
    rd_kafka_conf_set_log_cb(conf, on_log);
    kd->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errlen);
    if (!kd->rk) { /* conf is still ours */
        rd_kafka_conf_destroy(conf);
        free(kd);
        return NULL;
    }
    rd_kafka_poll_set_consumer(kd->rk);
    kd->queue = rd_kafka_queue_get_consumer(kd->rk);
    return kd;
}

static void drop_pending(kd_t *kd) {
    while (kd->next < kd->npending) rd_kafka_message_destroy(kd->pending[kd->next++]);
    kd->next = kd->npending = 0;
}

/* Assign partitions[i] at offsets[i] (librdkafka's logical offsets too: -2 is the beginning). */
int kd_assign(kd_t *kd, const char *topic, const int32_t *partitions, const int64_t *offsets,
              int n, char *err, int errlen) {
    drop_pending(kd);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n);
    int top = 0;
    for (int i = 0; i < n; i++) {
        rd_kafka_topic_partition_list_add(list, topic, partitions[i])->offset = offsets[i];
        if (partitions[i] + 1 > top) top = partitions[i] + 1;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(kd->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (e) { snprintf(err, errlen, "%s", rd_kafka_err2str(e)); return -1; }
    free(kd->last);
    kd->last = malloc(sizeof(int64_t) * (top ? top : 1));
    kd->nlast = top;
    for (int p = 0; p < top; p++) kd->last[p] = -1;
    for (int i = 0; i < n; i++) kd->last[partitions[i]] = offsets[i] >= 0 ? offsets[i] - 1 : -1;
    return 0;
}

static void set_valid(uint8_t *bitmap, int i, int valid) {
    if (valid) bitmap[i >> 3] |= (uint8_t)(1u << (i & 7));
    else bitmap[i >> 3] &= (uint8_t)~(1u << (i & 7));
}

/* Headers are handed out as the JSON object SQL reads them as (get_kafka_pipeline_prop's
 * prop_headers): {"name": "value", ...}, a NULL value as null, text as UTF-8 with each byte
 * that is not part of a valid UTF-8 sequence as U+FFFD; for a name given twice, its last value
 * where the name first appears (as a JSON object built in Python has it). No headers: a null. */

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0 if none starts there. */
static int utf8_len(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!len || (size_t)len > n) return 0;
    for (int i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (int i = 1; i < len; i++) cp = (cp << 6) | (s[i] & 0x3F);
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* s as a JSON string at out (at most 6 bytes per byte of s, plus 2); the bytes written. */
static int64_t json_string(uint8_t *out, const uint8_t *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    uint8_t *at = out;
    *at++ = '"';
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\') {
            *at++ = '\\';
            *at++ = c;
            i++;
        } else if (c >= '\b' && c <= '\r' && c != '\v') { /* \b \t \n \f \r, as Python's json */
            *at++ = '\\';
            *at++ = (uint8_t)"btnvfr"[c - '\b'];
            i++;
        } else if (c < 0x20) {
            memcpy(at, "\\u00", 4);
            at[4] = (uint8_t)hex[c >> 4];
            at[5] = (uint8_t)hex[c & 15];
            at += 6;
            i++;
        } else {
            int len = utf8_len(s + i, n - i);
            if (len) {
                memcpy(at, s + i, (size_t)len);
                at += len;
                i += (size_t)len;
            } else {
                memcpy(at, "\xEF\xBF\xBD", 3); /* U+FFFD */
                at += 3;
                i++;
            }
        }
    }
    *at++ = '"';
    return at - out;
}

/* At most how many bytes message m's headers take as JSON, or 0 if it has none. */
static int64_t header_bytes(rd_kafka_message_t *m, rd_kafka_headers_t **hdrs) {
    if (rd_kafka_message_headers(m, hdrs) != 0 || !*hdrs) return 0;
    int64_t size = 2;
    const char *name;
    const void *value;
    size_t len;
    for (size_t i = 0; rd_kafka_header_get_all(*hdrs, i, &name, &value, &len) == 0; i++)
        size += 2 + (6 * (int64_t)strlen(name) + 2) + 2 + (value ? 6 * (int64_t)len + 2 : 4);
    return size;
}

/* Whether header i's name was given before it (it is written there, with its last value). */
static int named_before(const rd_kafka_headers_t *hdrs, size_t i, const char *name) {
    const char *other;
    const void *value;
    size_t len;
    for (size_t j = 0; j < i && rd_kafka_header_get_all(hdrs, j, &other, &value, &len) == 0; j++)
        if (strcmp(name, other) == 0) return 1;
    return 0;
}

/* The headers as a JSON object at out; the bytes written. */
static int64_t headers_json(uint8_t *out, const rd_kafka_headers_t *hdrs) {
    uint8_t *at = out;
    const char *name;
    const void *value;
    size_t len;
    *at++ = '{';
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &len) == 0; i++) {
        if (named_before(hdrs, i, name)) continue;
        const char *other;
        const void *later;
        size_t later_len;
        for (size_t j = i + 1; rd_kafka_header_get_all(hdrs, j, &other, &later, &later_len) == 0; j++)
            if (strcmp(name, other) == 0) { /* the last value of a name given twice */
                value = later;
                len = later_len;
            }
        if (at - out > 1) {
            memcpy(at, ", ", 2);
            at += 2;
        }
        at += json_string(at, (const uint8_t *)name, strlen(name));
        memcpy(at, ": ", 2);
        at += 2;
        if (value) {
            at += json_string(at, value, len);
        } else {
            memcpy(at, "null", 4);
            at += 4;
        }
    }
    *at++ = '}';
    return at - out;
}

/* Hand out up to f->max_rows messages, waiting up to timeout_ms for the first ones only.
 * Stops early at an error other than end-of-partition (f->error set, the message consumed) or
 * when a buffer is full (the message stays pending; f->need if it alone does not fit). */
int kd_fill(kd_t *kd, int timeout_ms, kd_fill_t *f) {
    int n = 0, waited = 0;
    int64_t vpos = 0, kpos = 0, hpos = 0;
    f->rows = f->neof = f->error = f->fatal = f->dry = 0;
    f->skipped = f->need = 0;
    f->error_partition = -1;
    f->message[0] = 0;
    f->value_offsets[0] = 0;
    if (f->want & 1) f->key_offsets[0] = 0;
    if (f->want & 2) f->header_offsets[0] = 0;
    while (n < f->max_rows) {
        if (kd->next == kd->npending) {
            /* The first wait is for one message (librdkafka returns a batch only once it is
             * full or its timeout passed); then what is queued, without waiting. */
            kd->next = kd->npending = 0;
            ssize_t got = 0;
            if (!waited) {
                rd_kafka_message_t *first = rd_kafka_consume_queue(kd->queue, timeout_ms);
                if (first) {
                    kd->pending[0] = first;
                    ssize_t more = rd_kafka_consume_batch_queue(kd->queue, 0, kd->pending + 1,
                                                                PENDING - 1);
                    got = 1 + (more > 0 ? more : 0);
                }
            } else {
                got = rd_kafka_consume_batch_queue(kd->queue, 0, kd->pending, PENDING);
            }
            waited = 1;
            if (got <= 0) {
                f->dry = got == 0;
                break;
            }
            kd->npending = (int)got;
        }
        rd_kafka_message_t *m = kd->pending[kd->next];
        if (m->err) {
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (f->neof < f->max_rows) {
                    f->eof_at[f->neof] = n;
                    f->eof[f->neof++] = m->partition;
                }
            } else {
                f->error = m->err;
                f->error_partition = m->partition;
                const char *text = m->payload ? (const char *)m->payload : rd_kafka_err2str(m->err);
                int len = m->payload ? (int)m->len : (int)strlen(text);
                snprintf(f->message, sizeof f->message, "%.*s", len, text);
                char fatal[256];
                if (rd_kafka_fatal_error(kd->rk, fatal, sizeof fatal)) {
                    f->fatal = 1;
                    snprintf(f->message, sizeof f->message, "%s", fatal);
                }
            }
            rd_kafka_message_destroy(m);
            kd->next++;
            if (f->error) break;
            continue;
        }
        int32_t p = m->partition;
        if (p >= 0 && p < kd->nlast && m->offset <= kd->last[p]) { /* went back: loaded already */
            f->skipped++;
            rd_kafka_message_destroy(m);
            kd->next++;
            continue;
        }
        rd_kafka_headers_t *hdrs = NULL;
        int64_t hsize = (f->want & 2) ? header_bytes(m, &hdrs) : 0;
        int64_t vlen = m->payload ? (int64_t)m->len : 0, klen = m->key ? (int64_t)m->key_len : 0;
        int over = vpos + vlen > f->cap || ((f->want & 1) && kpos + klen > f->key_cap) ||
                   ((f->want & 2) && hpos + hsize > f->header_cap);
        if (over) {
            if (n == 0) f->need = vlen > klen ? (vlen > hsize ? vlen : hsize) : (klen > hsize ? klen : hsize);
            break; /* stays pending for the next call */
        }
        if (vlen) memcpy(f->values + vpos, m->payload, (size_t)vlen);
        vpos += vlen;
        f->value_offsets[n + 1] = (int32_t)vpos;
        set_valid(f->value_valid, n, m->payload != NULL);
        if (f->want & 1) {
            if (klen) memcpy(f->keys + kpos, m->key, (size_t)klen);
            kpos += klen;
            f->key_offsets[n + 1] = (int32_t)kpos;
            set_valid(f->key_valid, n, m->key != NULL);
        }
        if (f->want & 2) {
            if (hsize) hpos += headers_json(f->headers + hpos, hdrs);
            f->header_offsets[n + 1] = (int32_t)hpos;
            set_valid(f->header_valid, n, hsize > 0);
        }
        f->partitions[n] = p;
        f->offsets[n] = m->offset;
        if (f->want & 4) f->timestamps[n] = rd_kafka_message_timestamp(m, NULL);
        if (p >= 0 && p < kd->nlast) kd->last[p] = m->offset;
        n++;
        rd_kafka_message_destroy(m);
        kd->next++;
    }
    f->rows = n;
    return n;
}

/* The high watermark librdkafka last saw for a partition (from fetch responses), or -1. */
int64_t kd_high_watermark(kd_t *kd, const char *topic, int32_t partition) {
    int64_t low = -1, high = -1;
    if (rd_kafka_get_watermark_offsets(kd->rk, topic, partition, &low, &high)) return -1;
    return high;
}

/* The C reference for benchmarks: consume until `partitions` partitions reached their end,
 * touching every payload (its length) and nothing else, as kcat writing to /dev/null does
 * without the writes. Returns the messages; *nbytes their bytes. */
int64_t kd_count(kd_t *kd, int partitions, int timeout_ms, int64_t *nbytes) {
    int64_t rows = 0, bytes = 0;
    int ends = 0;
    drop_pending(kd);
    for (int idle = 0; ends < partitions && idle < timeout_ms;) {
        ssize_t got = rd_kafka_consume_batch_queue(kd->queue, WAIT_SLICE_MS, kd->pending, PENDING);
        if (got < 0) break;
        idle = got ? 0 : idle + WAIT_SLICE_MS;
        for (ssize_t i = 0; i < got; i++) {
            rd_kafka_message_t *m = kd->pending[i];
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) ends++;
            else if (!m->err) { rows++; bytes += (int64_t)m->len; }
            rd_kafka_message_destroy(m);
        }
    }
    *nbytes = bytes;
    return rows;
}

/* The log lines librdkafka wrote since the last call: "level\tline\n" each, into buf. */
int kd_logs(kd_t *kd, char *buf, int buflen, int *dropped) {
    pthread_mutex_lock(&kd->lock);
    int pos = 0;
    for (int i = 0; i < kd->nlogs && pos < buflen - 1; i++)
        pos += snprintf(buf + pos, (size_t)(buflen - pos), "%d\t%s\n", kd->logn[i], kd->logs[i]);
    if (pos >= buflen) pos = buflen - 1;
    buf[pos] = 0;
    int n = kd->nlogs;
    *dropped = kd->dropped_logs;
    kd->nlogs = kd->dropped_logs = 0;
    pthread_mutex_unlock(&kd->lock);
    return n;
}

void kd_close(kd_t *kd) {
    drop_pending(kd);
    rd_kafka_queue_destroy(kd->queue);
    rd_kafka_consumer_close(kd->rk);
    rd_kafka_destroy(kd->rk);
    free(kd->last);
    pthread_mutex_destroy(&kd->lock);
    free(kd);
}
