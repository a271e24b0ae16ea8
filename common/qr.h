/*
 * qr.h: QR codes for the terminal, so `baton-local pair` can show a
 * pairing code that a phone camera reads off the screen. Encoding is
 * libqrencode's (8-bit mode, error correction level M); drawing is ours.
 */
#ifndef BATON_QR_H
#define BATON_QR_H

/*
 * Renders text as a QR code for a terminal: two module rows per line of
 * Unicode half and full blocks, a 2-module quiet zone, light modules drawn
 * as blocks. Each line pins its colours (bright white on black, then a
 * reset before the "\n") so the code is dark-on-light whatever the theme.
 * Returns a malloc'd UTF-8 string the caller frees, or NULL with errno set:
 * EINVAL for empty text or text too long for any QR code (over 2331
 * bytes), ENOMEM from libqrencode.
 */
char *qr_render(const char *text);

/*
 * The module matrix of text's QR code, for tests: sets *width and returns
 * width * width bytes row by row, 1 for dark and 0 for light, which the
 * caller frees. NULL with errno set as for qr_render().
 */
unsigned char *qr_modules(const char *text, int *width);

/*
 * The address of the relay's web page for a relay URL (ws:// gives http://,
 * wss:// gives https://; any path is dropped) with "#fragment" after it,
 * as QR codes carry it: qr_page_url("wss://r.example:443", "pair=CODE").
 * The caller frees.
 */
char *qr_page_url(const char *relay, const char *fragment);

#endif
