/* bad_frames.h - the one check, for every transport the I/O threads serve, that a
 * thread's parse answers good requests mixed with bad frames as the loop thread's does,
 * byte for byte (docs/architecture.md, "I/O threads: decisions and reasons"). The tests
 * of TCP and of TLS share it, so that what they send and compare cannot drift apart; each
 * gives only how its client reaches chatd. */
#ifndef CHATD_TEST_BAD_FRAMES_H
#define CHATD_TEST_BAD_FRAMES_H

/* Start chatd with `server_conf` in [server] (its io_threads line says io_threads), send
 * `bytes` from one client, and return everything the client gets until chatd closes the
 * connection (test_client_read_to_eof; the caller frees it); then stop chatd. */
typedef char *bad_frames_answers_fn(const char *server_conf, int io_threads, const char *bytes);

/* For each stream (good requests, a wrong type, a frame chatd cannot represent, then
 * bytes that are not JSON or a frame over max_frame_bytes, all in one send): the answers
 * with io_threads = 0 hold a bad_request and the error that ends the stream, and with
 * io_threads = 1 they are the same bytes. Fails the Check test otherwise. */
void bad_frames_assert_threads_answer_as_the_loop(bad_frames_answers_fn *answers_to);

#endif
