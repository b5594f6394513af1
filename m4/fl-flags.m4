# FL_APPEND_CFLAGS(VARIABLE, FLAGS)
# Appends to VARIABLE each of FLAGS that $CC accepts.  The probe uses -Werror
# (clang only warns on unknown -W options) and -Wall (gcc rejects
# -Wformat-security and friends on their own).
AC_DEFUN([FL_APPEND_CFLAGS], [
  for fl_flag in $2; do
    AS_VAR_PUSHDEF([fl_cv], [fl_cv_cflag_$fl_flag])
    AC_CACHE_CHECK([whether $CC accepts $fl_flag], [fl_cv], [
      fl_save_CFLAGS=$CFLAGS
      CFLAGS="$CFLAGS -Wall -Werror $fl_flag"
      AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])],
                        [AS_VAR_SET([fl_cv], [yes])], [AS_VAR_SET([fl_cv], [no])])
      CFLAGS=$fl_save_CFLAGS])
    AS_VAR_IF([fl_cv], [yes], [$1="$$1 $fl_flag"])
    AS_VAR_POPDEF([fl_cv])
  done
  AC_SUBST([$1])])
