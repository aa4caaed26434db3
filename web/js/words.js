// What a refusal means, for a person: the server's reason when it gave one, else the
// meaning of the result word.

const MEANING = {
  disconnected: "not connected to the server; try again in a moment",
  user_not_exist: "no such user",
  passwd_error: "wrong password",
  token_invalid: "the saved login is no longer valid",
  already_friends: "you are friends already",
  group_not_exist: "no such group",
  already_member: "you are a member already",
  not_member: "you are not a member of that group",
  not_logged_in: "not logged in",
  forbidden: "not allowed",
  busy: "the server is busy; try again",
  rate_limited: "too many requests; wait a moment",
  internal: "the server failed; nothing was done",
  bad_request: "the server refused the request",
  failure: "refused",
};

export function refusal(reply) {
  if (typeof reply.reason === "string" && reply.reason) return reply.reason;
  return MEANING[reply.result] ?? `refused (${reply.result})`;
}
