# bash completion for wf and wf-worker (installed as completions/wf and completions/wf-worker).
# Keep the lists in step with `wf --help` (cli/main.c) and `wf-worker --help` (worker/program.c).

_wf_workflows() {
    wf workflows 2>/dev/null
}

_wf() {
    local cur prev cmd i
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    local commands="run status wait steps stop pause resume restart retry list workflows stats
        workers purge migrate retention send-event schedule limit pause-workflow resume-workflow web help"
    local states="queued running paused waiting completed failed cancelled terminated"
    cmd=
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        --redis) ((i++)) ;;
        -*) ;;
        *) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done
    case $prev in
    --redis | --id | --delay | --timeout | --since | --until | --limit | --offset | --older-than | \
        --key | --reason | --max-running | --per-key | --rate | --per | --debounce | --listen | --token | --base-path)
        # --listen defaults to 127.0.0.1:8080; durations: 500ms, 10s, 10m, 2h, 7d
        return ;;
    --state) COMPREPLY=($(compgen -W "$states" -- "$cur")); return ;;
    --priority) COMPREPLY=($(compgen -W "high normal low" -- "$cur")); return ;;
    --catch-up) COMPREPLY=($(compgen -W "one all none" -- "$cur")); return ;;
    --workflow) COMPREPLY=($(compgen -W "$(_wf_workflows)" -- "$cur")); return ;;
    esac
    if [ -z "$cmd" ]; then
        COMPREPLY=($(compgen -W "$commands --redis --json --no-color --help --version" -- "$cur"))
        return
    fi
    local opts="--redis --json --no-color --help"
    case $cmd in
    run) opts+=" --wait --timeout --id --delay --priority" ;;
    status) opts+=" --text --follow --timeout" ;;
    wait) opts+=" --timeout" ;;
    stop) opts+=" --reason --state --workflow --force --since --until --dry-run --yes" ;;
    retry) opts+=" --state --workflow --force --since --until --dry-run --yes" ;;
    restart) opts+=" --clear-steps" ;;
    list) opts+=" --state --workflow --force --since --until --limit --offset" ;;
    stats) opts+=" --workflow --force" ;;
    workers) opts+=" --live" ;;
    purge) opts+=" --older-than --workflow --force --state --dry-run" ;;
    migrate) opts+=" --force" ;;
    retention) opts+=" --completed --failed --force" ;;
    send-event) opts+=" --key" ;;
    schedule) opts+=" --catch-up --workflow --force" ;;
    limit) opts+=" --max-running --key --per-key --rate --per --rate-per-key --singleton
        --no-singleton --debounce --clear --force" ;;
    pause-workflow | resume-workflow) opts+=" --force" ;;
    web) opts="--listen --token --base-path --redis --no-color --help" ;;
    help) COMPREPLY=($(compgen -W "$commands" -- "$cur")); return ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    elif [ "$cmd" = run ] || [ "$cmd" = limit ] || [ "$cmd" = pause-workflow ] ||
        [ "$cmd" = resume-workflow ]; then
        COMPREPLY=($(compgen -W "$(_wf_workflows)" -- "$cur"))
    elif [ "$cmd" = schedule ] && [ "$prev" = schedule ]; then
        COMPREPLY=($(compgen -W "add list remove pause resume trigger" -- "$cur"))
    fi
}

_wf_worker() {
    local cur prev
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    case $prev in
    --workflows) COMPREPLY=($(compgen -d -- "$cur")); return ;;
    --webhook-secret-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --log-level) COMPREPLY=($(compgen -W "error warn info debug" -- "$cur")); return ;;
    --log-format) COMPREPLY=($(compgen -W "logfmt json" -- "$cur")); return ;;
    --redis | --processes | --concurrency | --batch | --lease-ms | --drain-ms | --stuck-grace-ms | \
        --max-rss-mb | --http | --http-token | --webhook | --webhook-max-attempts | \
        --webhook-timeout-ms | --webhook-visibility-ms)
        return ;;
    esac
    COMPREPLY=($(compgen -W "--redis --workflows --processes --concurrency --batch --lease-ms
        --drain-ms --stuck-grace-ms --max-rss-mb --log-level --log-format --http --http-token
        --webhook --webhook-secret-file --webhook-max-attempts --webhook-timeout-ms
        --webhook-visibility-ms --help --version" -- "$cur"))
}

complete -F _wf wf
complete -F _wf_worker wf-worker
