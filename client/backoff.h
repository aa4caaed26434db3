/* backoff.h - how long chat waits before its next attempt to reconnect: doubling from
 * one second up to a cap, each delay drawn at random between half and all of it, so
 * that the clients of a server that restarts do not all come back in the same second. */
#ifndef CHAT_BACKOFF_H
#define CHAT_BACKOFF_H

#define CHAT_BACKOFF_FIRST_MS 1000
#define CHAT_BACKOFF_CAP_MS   30000

/* The delay before attempt `attempt` (0 for the first after the connection was lost),
 * in milliseconds; `random` is a uniformly random number (e.g. from rand()). */
int chat_backoff_ms(int attempt, long random);

#endif
