/* backoff.c - the reconnect delay (see backoff.h). */
#include "backoff.h"

int chat_backoff_ms(int attempt, long random)
{
    long full = CHAT_BACKOFF_FIRST_MS;
    for (int i = 0; i < attempt && full < CHAT_BACKOFF_CAP_MS; i++)
        full *= 2;
    if (full > CHAT_BACKOFF_CAP_MS)
        full = CHAT_BACKOFF_CAP_MS;
    long half = full / 2;
    long r = random < 0 ? -(random + 1) : random;
    return (int)(half + r % (half + 1));
}
