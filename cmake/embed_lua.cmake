# Turns lua/*.lua into wf's Redis Functions library and embeds it in C (docs/architecture.md,
# "The scripts"). lua/ stays the source a reader edits; what Redis runs is generated here:
#
#   #!lua name=wf
#   local KEYS, ARGV = {}, {}        -- upvalues every helper and script reads as before
#   <lua/lib.lua>                    -- the helpers, defined once per library load: lib.lua,
#   <lua/lib_queue.lua> ...          -- then its parts lib_*.lua in the order of lib_parts below
#   local function script_claim()    -- each other lua/NAME.lua, verbatim, as a function
#   <lua/claim.lua>
#   end
#   ...
#   redis.register_function('wf_claim', call(script_claim))  -- call() sets KEYS and ARGV from
#   ...                                                        -- FCALL's (keys, args), then runs
#   redis.register_function{function_name = 'wf_version', ...} -- lib.lua's wf_call_begin()
#
# Outputs, beside OUT (generated/wf_scripts.c):
#   wf_scripts.c      the library source and its version as C strings, and the table of scripts
#                     (file name, function name), in the order of wf_script_ids.h
#   wf_script_ids.h   the C enum of the scripts (WF__SCRIPT_<NAME>, sorted by name): a new
#                     lua/NAME.lua is a new WF__SCRIPT_NAME and a new function wf_NAME
#   wf_library.lua    the library itself, for reading, or for `redis-cli FUNCTION LOAD` by hand
#
# The version (what FCALL wf_version answers) is "<project version> <time> <12 hex of the SHA1 of
# the library>", time being the Unix time of the git commit the sources are at (else
# $SOURCE_DATE_EPOCH, else 0): core/script_table.c's wf__library_replace orders two builds by it,
# so that of two builds of one release the later commit's library wins (docs/architecture.md).
cmake_policy(SET CMP0054 NEW)
cmake_policy(SET CMP0057 NEW) # if(IN_LIST)
# Invoked as: cmake -DLUA_DIR=... -DOUT=... -DWF_VERSION=x.y.z -P embed_lua.cmake
if(NOT WF_VERSION)
  set(WF_VERSION 0.0.0)
endif()
set(when "$ENV{SOURCE_DATE_EPOCH}")
execute_process(COMMAND git log -1 --format=%ct WORKING_DIRECTORY ${LUA_DIR}
  OUTPUT_VARIABLE git_when OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE git_rc ERROR_QUIET)
if(git_rc EQUAL 0 AND git_when MATCHES "^[0-9]+$")
  set(when ${git_when})
endif()
if(NOT when MATCHES "^[0-9]+$")
  set(when 0)
endif()
# The scripts that may run on a Redis out of memory (maxmemory reached, noeviction), registered
# with the flag allow-oom; Redis refuses the others before they run. The list keeps what Redis
# did with them as EVAL scripts: it refused a script at its first command that may grow memory
# unless it had written already, and these begin with one that cannot (ZREM, XACK, XDEL, HDEL,
# DEL: they move or end runs, or take timers due), so they ran to their end; the others
# (enqueue, event_send, heartbeat, step, suspend) begin with one that can, and were refused. A
# new script is refused on a full Redis unless it is listed here (docs/architecture.md).
set(allow_oom admit claim complete deliver event_wait fail fire migrate outbox pause purge reclaim
  release restart resume schedule_ctl stop wake)
# The scripts that only read, registered no-writes: they run on a full Redis and on a replica
# (redis-cli FCALL_RO too), as `wf status` should.
set(no_writes status)
# lib.lua's parts (lua/lib_*.lua: helpers, not scripts), added after it in this order: a Lua
# local exists from its definition on, so a part may use what lib.lua and the parts before it
# define (lib.lua says what each holds). A lib_*.lua missing from the list is a build error.
set(lib_parts lib_queue lib_finish lib_history lib_flow)
file(GLOB found_parts ${LUA_DIR}/lib_*.lua)
foreach(path ${found_parts})
  get_filename_component(name ${path} NAME_WE)
  if(NOT name IN_LIST lib_parts)
    message(FATAL_ERROR "lua/${name}.lua is a part of lib.lua but not in cmake/embed_lua.cmake's \
lib_parts: add it there, after the parts it uses")
  endif()
endforeach()
file(GLOB scripts ${LUA_DIR}/*.lua)
list(SORT scripts)
file(READ ${LUA_DIR}/lib.lua lib)

set(lua "local KEYS, ARGV = {}, {}\n${lib}\n")
foreach(name ${lib_parts})
  if(NOT EXISTS ${LUA_DIR}/${name}.lua)
    message(FATAL_ERROR "lua/${name}.lua, listed in cmake/embed_lua.cmake's lib_parts, is missing")
  endif()
  file(READ ${LUA_DIR}/${name}.lua part)
  string(APPEND lua "${part}\n")
endforeach()
set(register "")
set(table "")
set(ids "")
foreach(path ${scripts})
  get_filename_component(name ${path} NAME_WE)
  if(name STREQUAL "lib" OR name IN_LIST lib_parts)
    continue()
  endif()
  file(READ ${path} src)
  string(APPEND lua "local function script_${name}()\n${src}\nend\n")
  if(name IN_LIST no_writes)
    string(APPEND register "redis.register_function{function_name = 'wf_${name}', \
callback = call(script_${name}), flags = {'no-writes'}}\n")
  elseif(name IN_LIST allow_oom)
    string(APPEND register "redis.register_function{function_name = 'wf_${name}', \
callback = call(script_${name}), flags = {'allow-oom'}}\n")
  else()
    string(APPEND register "redis.register_function('wf_${name}', call(script_${name}))\n")
  endif()
  string(APPEND table "    {\"${name}\", \"wf_${name}\"},\n")
  string(TOUPPER ${name} id)
  string(APPEND ids "    WF__SCRIPT_${id},\n")
endforeach()
string(APPEND lua "
-- FCALL wf_NAME numkeys keys... args...: the script NAME with KEYS and ARGV set from the call.
local function call(script)
    return function(keys, args)
        KEYS, ARGV = keys, args
        wf_call_begin()
        return script()
    end
end
${register}")
string(SHA1 hash "${lua}")
string(SUBSTRING ${hash} 0 12 hash)
set(version "${WF_VERSION} ${when} ${hash}")
set(lua "#!lua name=wf
-- wf's Redis Functions library, version ${version}. Generated by cmake/embed_lua.cmake from
-- lua/*.lua (edit those, not this). Loaded by libwf (redis/scripts.c); see docs/architecture.md.
${lua}redis.register_function{function_name = 'wf_version', flags = {'no-writes'},
    callback = function() return '${version}' end}
")

get_filename_component(out_dir ${OUT} DIRECTORY)
file(WRITE ${out_dir}/wf_library.lua.tmp "${lua}")
file(COPY_FILE ${out_dir}/wf_library.lua.tmp ${out_dir}/wf_library.lua ONLY_IF_DIFFERENT)

# The library as a sequence of C string literals, one per line, escaping what C needs.
set(src "${lua}")
string(REPLACE "\\" "\\\\" src "${src}")
string(REPLACE "\"" "\\\"" src "${src}")
string(REPLACE "\t" "\\t" src "${src}")
string(REPLACE "\n" "\\n\"\n    \"" src "${src}")
set(body "/* Generated by cmake/embed_lua.cmake from the files in lua/. Do not edit. */\n")
string(APPEND body "#include \"wf_scripts.h\"\n\n")
string(APPEND body "static const char library[] =\n    \"${src}\";\n\n")
string(APPEND body "const char *const wf__library_src = library;\n")
string(APPEND body "const size_t wf__library_len = sizeof library - 1;\n")
string(APPEND body "const char *const wf__library_version = \"${version}\";\n\n")
string(APPEND body "const wf__script_src wf__script_sources[] = {\n${table}    {0, 0}};\n")

set(header "/* Generated by cmake/embed_lua.cmake from the files in lua/. Do not edit. */\n")
string(APPEND header "#ifndef WF_SCRIPT_IDS_H\n#define WF_SCRIPT_IDS_H\n\n")
string(APPEND header "/* One per lua/NAME.lua but lib.lua and its parts lib_*.lua, sorted by name: \
the\n * index into wf__script_sources. */\n")
string(APPEND header "typedef enum wf__script {\n${ids}    WF__SCRIPT_COUNT\n} wf__script;\n\n#endif\n")
file(WRITE ${out_dir}/wf_script_ids.h.tmp "${header}")
file(COPY_FILE ${out_dir}/wf_script_ids.h.tmp ${out_dir}/wf_script_ids.h ONLY_IF_DIFFERENT)
file(WRITE ${OUT}.tmp "${body}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
