/* state_dir.h - the folder where chat keeps what it learns about an installation: the
 * login tokens and the device name. $XDG_STATE_HOME/chatd, or ~/.local/state/chatd when
 * XDG_STATE_HOME is not set; readable by its owner only (0700). */
#ifndef CHAT_STATE_DIR_H
#define CHAT_STATE_DIR_H

#include <stddef.h>

/* The path of `sub` (e.g. "tokens" or "device") in the state folder into out. With
 * `create`, the folder and its parents are made (0700) as needed, and the state folder
 * is set to 0700 (also one made earlier with a wider mode). 0, or -1 when there is no
 * home, the path is too long or a folder cannot be made. */
int chat_state_path(const char *sub, char *out, size_t cap, int create);

#endif
