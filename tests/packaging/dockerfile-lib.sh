# dockerfile-lib.sh: reads agent-sandbox/Dockerfile for the packaging
# tests, and checks its final stage against a built baton-sandbox. Sourced
# by tests/packaging/dockerfile-stages.sh (a fresh Debian root, the build
# stage run for real) and tests/integration/test-dockerfile.sh (the
# structure, and the libraries of the build tree's baton-sandbox).
#
# df_fail MESSAGE must be defined by the script that sources this.

# df_instructions FILE: the instructions, one a line, as
# "STAGE<TAB>KEYWORD<TAB>ARGUMENTS": continuation lines joined, comments and
# blank lines dropped (as Docker drops them, inside a continued instruction
# too), STAGE counting the FROM lines from 1, KEYWORD in capitals.
df_instructions() {
  awk '
    /^[ \t]*#/ { next }
    {
      line = cont $0
      if (line ~ /\\[ \t]*$/) {
        sub(/\\[ \t]*$/, "", line)
        cont = line " "
        next
      }
      cont = ""
      if (line ~ /^[ \t]*$/)
        next
      sub(/^[ \t]+/, "", line)
      kw = line
      sub(/[ \t].*$/, "", kw)
      rest = substr(line, length(kw) + 1)
      sub(/^[ \t]+/, "", rest)
      kw = toupper(kw)
      if (kw == "FROM")
        stage++
      printf "%d\t%s\t%s\n", stage, kw, rest
    }' "$1"
}

# df_stage FILE N: the instructions of stage N ("KEYWORD<TAB>ARGUMENTS").
df_stage() {
  df_instructions "$1" | awk -F'\t' -v n="$2" '$1 == n {
    sub(/^[^\t]*\t/, ""); print }'
}

# df_stages FILE: how many stages there are.
df_stages() {
  df_instructions "$1" | awk -F'\t' '$2 == "FROM" { n++ } END { print n + 0 }'
}

# df_build_stage FILE: the number of the stage named "build".
df_build_stage() {
  df_instructions "$1" | awk -F'\t' '$2 == "FROM" &&
    tolower($3) ~ /[ \t]as[ \t]+build$/ { print $1; exit }'
}

# df_runtime_packages FILE: the packages the final stage installs with
# apt-get install, one a line (options dropped, up to the end of each
# install command).
df_runtime_packages() {
  df_stage "$1" "$(df_stages "$1")" | awk -F'\t' '$1 == "RUN" {
    n = split($2, w, /[ \t]+/)
    for (i = 1; i <= n; i++) {
      if (w[i] == "apt-get" && w[i + 1] == "install") {
        for (i += 2; i <= n; i++) {
          if (w[i] ~ /^(&&|\|\||;|\|)$/ || w[i] ~ /;$/)
            break
          if (w[i] !~ /^-/)
            print w[i]
        }
      }
    }
  }'
}

# df_closure PACKAGE...: the packages and everything they depend on, one a
# line (pre-dependencies included; virtual names without their <>).
df_closure() {
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances "$@" 2>/dev/null |
    awk '/^[^ ]/ { gsub(/[<>]/, ""); print }' | sort -u
}

# df_base_packages: the packages every Debian image has (Priority
# required), one a line.
df_base_packages() {
  dpkg-query -W -f='${Package} ${Priority}\n' |
    awk '$2 == "required" { print $1 }' | sort -u
}

# df_package_of PATH: the installed package that owns the file PATH, also
# when PATH goes through a symbolic link (/lib is /usr/lib on Debian 12).
df_package_of() {
  local p real owner
  real=$(readlink -f "$1")
  for p in "$1" "$real" "/usr$1" "${real#/usr}"; do
    owner=$(dpkg -S "$p" 2>/dev/null | head -n 1) || continue
    [ -n "$owner" ] || continue
    printf '%s\n' "${owner%%[:,]*}"
    return 0
  done
  return 1
}

# df_check_structure FILE: multi-stage, a stage named build, the final stage
# on Debian 12 with no build tools or -dev packages, running as a user that
# is not root, entering through baton-sandbox, with baton-sandbox copied
# from the build stage.
df_check_structure() {
  local file=$1 last final from user entry pkgs bad
  last=$(df_stages "$file")
  [ "$last" -ge 2 ] || df_fail "$file has $last stage(s), not a build stage \
and a runtime stage"
  [ -n "$(df_build_stage "$file")" ] || df_fail "$file has no stage named build"
  [ "$(df_build_stage "$file")" != "$last" ] ||
    df_fail "$file's final stage is the build stage"
  final=$(df_stage "$file" "$last")
  from=$(printf '%s\n' "$final" | awk -F'\t' '$1 == "FROM" { print $2 }')
  [[ $from =~ ^debian:(12|bookworm)([.-][a-z0-9.-]*)?$ ]] ||
    df_fail "the final stage is FROM '$from', not Debian 12"

  user=$(printf '%s\n' "$final" | awk -F'\t' '$1 == "USER" { u = $2 }
    END { print u }')
  [ -n "$user" ] || df_fail "the final stage has no USER: it would run as root"
  case ${user%%:*} in
    root|0) df_fail "the final stage runs as USER $user" ;;
  esac

  entry=$(printf '%s\n' "$final" | awk -F'\t' '$1 == "ENTRYPOINT" {
    e = $2 } END { print e }')
  [[ $entry =~ ^\[[[:space:]]*\"([^\"]*/)?baton-sandbox\" ]] ||
    df_fail "the ENTRYPOINT is '$entry', not [\"baton-sandbox\" ...] in \
exec form"

  grep -qE '^COPY	--from=build .*/baton-sandbox ' <<<"$final" ||
    df_fail "the final stage does not copy baton-sandbox from the build stage"

  pkgs=$(df_runtime_packages "$file")
  [ -n "$pkgs" ] || df_fail "the final stage installs no packages"
  bad=$(printf '%s\n' "$pkgs" |
    grep -E -- '-dev$|^(build-essential|gcc|g\+\+|cmake|make|pkg-config)$' ||
    true)
  [ -z "$bad" ] || df_fail "the final stage installs build packages:" $bad
  grep -qx libwebsockets-evlib-uv <<<"$pkgs" ||
    df_fail "the final stage lacks libwebsockets-evlib-uv, which \
libwebsockets loads at run time for the libuv loop (no ldd shows it)"
}

# df_check_libraries FILE BINARY: every library ldd says BINARY needs
# belongs to a package the final stage installs, one they depend on, or
# one every Debian image has; and every library package the final stage
# lists is needed (a small image). BINARY must be built as the image builds
# it: without sanitizers. Prints what provides what.
df_check_libraries() {
  local file=$1 bin=$2 pkgs have needed lib path pkg missing=() extra=()
  pkgs=$(df_runtime_packages "$file")
  # shellcheck disable=SC2086
  have=$( { df_closure $pkgs; df_base_packages; } | sort -u)
  [ -n "$have" ] || df_fail "apt-cache knows none of the packages:" $pkgs
  needed=""
  while read -r lib path; do
    [ "$path" != "not-found" ] || df_fail "ldd finds no $lib for $bin"
    pkg=$(df_package_of "$path") ||
      df_fail "no installed package owns $path ($lib)"
    needed+="$pkg"$'\n'
    if ! grep -qxF "$pkg" <<<"$have"; then
      missing+=("$lib ($pkg)")
    fi
    printf '  %-28s %s\n' "$lib" "$pkg"
  done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }
    $2 == "=>" && $3 == "not" { print $1, "not-found" }
    $1 ~ /^\// { print $1, $1 }')
  [ ${#missing[@]} -eq 0 ] || df_fail "the final stage does not provide:" \
    "${missing[@]}"
  for pkg in $pkgs; do
    case $pkg in
      lib*) ;;
      *) continue ;;
    esac
    [ "$pkg" = libwebsockets-evlib-uv ] && continue
    grep -qxF "$pkg" <<<"$needed" || extra+=("$pkg")
  done
  [ ${#extra[@]} -eq 0 ] || df_fail "the final stage installs libraries \
baton-sandbox does not link:" "${extra[@]}"
}
