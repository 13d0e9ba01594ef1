#include <git2.h>

// git_libgit2_opts is variadic and so unavailable from Swift. Owner validation is turned off because
// CI and shared machines often run as a user other than the checkout's owner.
static inline int cgit2_set_owner_validation(int enabled) {
    return git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, enabled);
}
