/* publish-draft.c - the workflow `publish-draft` (its name comes from this file's name), the C port
 * of the original's defineWorkflow example:
 *
 *     export default defineWorkflow(async (input?: { title?: string }) => {
 *       const { title } = await readValidatedPayload(input, value => ({
 *         title: typeof value?.title === 'string' && value.title.trim()
 *           ? value.title.trim()
 *           : 'Untitled draft',
 *       }))
 *       return { title, slug: title.toLowerCase().replace(/[^a-z0-9]+/g, '-') }
 *     })
 *
 * Built as a module by wf_add_workflows(); `wf-worker --workflows DIR` loads it.
 */
#include <stdlib.h>
#include <string.h>

#include <wf/wf.h>

#include "../js_string.h"

#define DEFAULT_TITLE "Untitled draft"

/* `value?.title` when it is a string, else NULL. With a repeated key the last one wins, as it does
 * when JavaScript builds an object. */
static const msgpack_object_str *title_field(const msgpack_object *value)
{
    const msgpack_object_str *title = NULL;
    if (value->type != MSGPACK_OBJECT_MAP) return NULL;
    for (uint32_t i = 0; i < value->via.map.size; i++) {
        const msgpack_object_kv *kv = &value->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 5 &&
            memcmp(kv->key.via.str.ptr, "title", 5) == 0)
            title = kv->val.type == MSGPACK_OBJECT_STR ? &kv->val.via.str : NULL;
    }
    return title;
}

/* The validator: the trimmed title when it is a non-blank string, else "Untitled draft". Sets
 * *title to borrowed bytes (the input's, or the static default) and returns their length. */
static size_t validate_input(const msgpack_object *value, const char **title)
{
    const msgpack_object_str *field = title_field(value);
    if (field) {
        const char *s = field->ptr;
        size_t len = field->size;
        js_trim(&s, &len);
        if (len > 0) {
            *title = s;
            return len;
        }
    }
    *title = DEFAULT_TITLE;
    return strlen(DEFAULT_TITLE);
}

/* title.toLowerCase().replace(/[^a-z0-9]+/g, '-') for UTF-8 `title`, into `slug` (room for `len`
 * bytes: the slug is never longer). Returns the slug's length. Any non-ASCII character becomes
 * part of a dash run, except the two whose JavaScript lower case is ASCII: U+212A KELVIN SIGN
 * ("k") and U+0130 LATIN CAPITAL LETTER I WITH DOT ABOVE ("i" + U+0307, so "i-"). Leading and
 * trailing dashes stay, as in JavaScript. */
static size_t slugify(const char *title, size_t len, char *slug)
{
    const unsigned char *s = (const unsigned char *)title;
    size_t n = 0;
    int in_dashes = 0;
    for (size_t i = 0; i < len;) {
        char letter = 0;
        size_t width = 1;
        int dash_after = 0;
        if (s[i] >= 'A' && s[i] <= 'Z') {
            letter = (char)(s[i] - 'A' + 'a');
        } else if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')) {
            letter = (char)s[i];
        } else if (i + 1 < len && s[i] == 0xC4 && s[i + 1] == 0xB0) {
            letter = 'i', width = 2, dash_after = 1;
        } else if (i + 2 < len && s[i] == 0xE2 && s[i + 1] == 0x84 && s[i + 2] == 0xAA) {
            letter = 'k', width = 3;
        }
        if (letter) {
            slug[n++] = letter;
            in_dashes = 0;
        }
        if ((!letter || dash_after) && !in_dashes) {
            slug[n++] = '-';
            in_dashes = 1;
        }
        i += width;
    }
    return n;
}

static void pack_string(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

static int publish_draft(wf_ctx *ctx, const msgpack_object *input, msgpack_packer *output)
{
    const char *title;
    size_t len = validate_input(input, &title);
    char *slug = malloc(len > 0 ? len : 1);
    if (!slug) return wf_ctx_fail(ctx, WF_ERR_NOMEM, "out of memory for a %zu-byte slug", len);
    size_t slug_len = slugify(title, len, slug);

    msgpack_pack_map(output, 2);
    pack_string(output, "title", 5);
    pack_string(output, title, len);
    pack_string(output, "slug", 4);
    pack_string(output, slug, slug_len);
    free(slug);
    return WF_OK;
}

WF_WORKFLOW(publish_draft);
