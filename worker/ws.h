/*
 * ws.h - one server-side WebSocket connection after the 101: frames in
 * (streamed as chunks, never whole messages), frames out, the RFC 6455
 * rules a server enforces (masking, RSV bits, opcodes, fragmentation,
 * control frames, close codes, message size), and the handshake's
 * Sec-WebSocket-Accept. Framing is wslay's frame layer; text frames are
 * deliberately NOT checked for UTF-8 (real clients send raw bytes).
 */
#ifndef ECH3_WS_H
#define ECH3_WS_H

#include <stddef.h>
#include <stdint.h>

#include "io.h"

enum ws_opcode {
	WS_CONT = 0x0, WS_TEXT = 0x1, WS_BINARY = 0x2,
	WS_CLOSE = 0x8, WS_PING = 0x9, WS_PONG = 0xa,
};

enum ws_event_type {
	WS_EV_NONE = 0,	/* nothing buffered: wait for the socket */
	WS_EV_DATA,	/* a chunk of a text or binary message */
	WS_EV_PING,
	WS_EV_PONG,
	WS_EV_CLOSE,	/* the peer's close frame */
	WS_EV_ERROR,	/* a protocol violation: close with code */
};

struct ws_event {
	enum ws_event_type type;
	enum ws_opcode opcode;	/* DATA: WS_TEXT or WS_BINARY */
	int first, last;	/* DATA: first / last chunk of the message */
	const uint8_t *data;	/* DATA and control payloads */
	size_t len;
	uint16_t code;		/* CLOSE: received (1005 if none);
				   ERROR: the code to close with */
	const char *reason;	/* ERROR: what went wrong, for the log */
};

struct ws;

/* Creates the state for a connection on io. max_message bounds every
 * message (1009 above it). Returns NULL when out of memory. */
struct ws *ws_new(struct io *io, uint64_t max_message);

/* The same for ech3's own client side (to a ws:// backend): it masks what
 * it sends and expects unmasked frames. */
struct ws *ws_new_client(struct io *io, uint64_t max_message);
void ws_free(struct ws *ws);

/* Bytes that arrived with the HTTP request head, to parse before reading
 * the socket. Returns 0 or -1 (out of memory). */
int ws_prime(struct ws *ws, const void *data, size_t len);

/* One read from the socket into the receive buffer (call when it is
 * readable). Returns >0 bytes, 0 at EOF, -1 on error. */
long ws_fill(struct ws *ws);

/* 1 while received bytes are buffered but not yet parsed. */
int ws_pending(const struct ws *ws);

/* Parses the next event from buffered bytes. Chunks point into ws-owned
 * memory valid until the next call. Returns ev->type. */
enum ws_event_type ws_next(struct ws *ws, struct ws_event *ev);

/* Sends one whole frame (fin set). Returns 0 or -1. */
int ws_send(struct ws *ws, enum ws_opcode op, const void *data, size_t len);

/* Sends one frame of a message: op is WS_TEXT/WS_BINARY on the first
 * frame and WS_CONT after; fin on the last. Returns 0 or -1. */
int ws_send_frame(struct ws *ws, enum ws_opcode op, int fin,
		  const void *data, size_t len);

/* Sends a close frame with code and reason once. Returns 0 or -1. */
int ws_send_close_reason(struct ws *ws, uint16_t code, const void *reason,
			 size_t len);

/* Sends a close frame once (later calls do nothing). Returns 0 or -1. */
int ws_send_close(struct ws *ws, uint16_t code);
int ws_close_sent(const struct ws *ws);

/* Computes Sec-WebSocket-Accept for key into out (29 bytes). */
void ws_accept_key(const char *key, size_t key_len, char out[29]);

#endif
