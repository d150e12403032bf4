/* textparse.h — reading values written as text, the same way everywhere: plugin parameters
 * on the command line and in schemas (values.c) and --set overrides of experiments
 * (lua_config.c). Not installed. */
#ifndef MF_TEXTPARSE_H
#define MF_TEXTPARSE_H

#include <stdint.h>

#define MF_TEXT_ITEM 96 /* longest list element kept */

/* An integer; integral floats count ("128.0", "1e3"). Surrounding spaces are allowed.
 * Return 1 on success, 0 when the text is not one. */
int mf__text_int(const char *t, int64_t *out);
/* A finite number. */
int mf__text_float(const char *t, double *out);
/* true/false, 1/0, yes/no, on/off (any case). */
int mf__text_bool(const char *t, int *out);
/* "{a, b}", "[a, b]", "a, b" or "a" into trimmed items; "{}" gives 0 items. Returns the
 * count, or -1 when malformed (an empty element, too many, too long). */
int mf__text_list(const char *t, char items[][MF_TEXT_ITEM], int max);

#endif
