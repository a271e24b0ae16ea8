/*
 * qr.c: encodes text as a QR code with libqrencode and draws it with
 * Unicode block elements, two module rows to a line of text.
 *
 * Light modules are the blocks (foreground) and dark modules the cell
 * background. Left to the theme, that is right on a dark terminal and
 * inverted on a light one, which many scanners refuse; so every line sets
 * bright white on black itself and resets before its newline (a reset
 * after the newline would let the background spill into the next line).
 */
#include "qr.h"

#include <errno.h>
#include <qrencode.h>
#include <stddef.h>
#include <string.h>

#include "util.h"

/* The light margin around the symbol, in modules. */
#define QR_QUIET 2
/* Bright white on black, and back to the terminal's own colours. */
#define QR_COLOURS "\033[97;40m"
#define QR_RESET "\033[0m"

/* Encodes text in 8-bit mode at level M, in the smallest version that
 * holds it. NULL with errno EINVAL when text is empty or too long. */
static QRcode *qr_encode(const char *text)
{
	QRcode *code = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_M);

	/* libqrencode says ERANGE for too much data; callers see one code
	 * for "this text cannot be a QR code". */
	if (code == NULL && errno == ERANGE)
		errno = EINVAL;
	return code;
}

/* Whether module (x, y) of the symbol with its quiet zone is dark; every
 * position outside the symbol is light. */
static int qr_dark(const QRcode *code, int x, int y)
{
	x -= QR_QUIET;
	y -= QR_QUIET;
	if (x < 0 || y < 0 || x >= code->width || y >= code->width)
		return 0;
	return code->data[y * code->width + x] & 1;
}

/* Draws the symbol and its quiet zone, a line per two module rows. */
char *qr_render(const char *text)
{
	/* By darkness: bit 0 the upper module, bit 1 the lower one. */
	static const char *const cells[4] = {
		"\u2588",	/* full block: both light */
		"\u2584",	/* lower half block: upper dark */
		"\u2580",	/* upper half block: lower dark */
		" ",		/* both dark */
	};
	struct buf out = BUF_INIT;
	QRcode *code;
	int size, x, y, cell;

	code = qr_encode(text);
	if (code == NULL)
		return NULL;

	/* The side is odd (21 + 4k + 2 * QR_QUIET), so the last line's lower
	 * halves fall outside and are drawn light: more quiet zone. */
	size = code->width + 2 * QR_QUIET;
	for (y = 0; y < size; y += 2) {
		buf_puts(&out, QR_COLOURS);
		for (x = 0; x < size; x++) {
			cell = qr_dark(code, x, y) |
			       (qr_dark(code, x, y + 1) << 1);
			buf_puts(&out, cells[cell]);
		}
		buf_puts(&out, QR_RESET "\n");
	}

	QRcode_free(code);
	return buf_detach(&out, NULL);
}

/* Copies the symbol's modules out of libqrencode's bytes, whose bit 0 is
 * the colour and whose other bits say what the module is part of. */
unsigned char *qr_modules(const char *text, int *width)
{
	unsigned char *modules;
	QRcode *code;
	size_t count, i;

	code = qr_encode(text);
	if (code == NULL)
		return NULL;

	count = (size_t)code->width * (size_t)code->width;
	modules = xmalloc(count);
	for (i = 0; i < count; i++)
		modules[i] = code->data[i] & 1;
	*width = code->width;

	QRcode_free(code);
	return modules;
}

char *qr_page_url(const char *relay, const char *fragment)
{
	const char *rest = relay;
	const char *scheme = "http";
	size_t n;

	if (!strncmp(relay, "wss://", 6)) {
		scheme = "https";
		rest = relay + 6;
	} else if (!strncmp(relay, "ws://", 5)) {
		rest = relay + 5;
	}
	n = strcspn(rest, "/?#");
	return xasprintf("%s://%.*s/#%s", scheme, (int)n, rest, fragment);
}
