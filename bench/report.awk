# bench/report.awk - turns bench/run's aggregated figures into the table and the JSON object.
#
# Input 1: "metric-id median min max count" lines (bench/run's aggregate of every repetition).
# Input 2: bench/rows.txt, the table's rows and the targets.
# Environment: BENCH_MACHINE, BENCH_QUICK, BENCH_REPS, BENCH_ELAPSED, BENCH_STEPS, BENCH_AOF.
# Output: a Markdown table, the targets (met / not met), then one JSON object on the last lines.
# POSIX awk (mawk is enough).

function num(x) {
    if (x == "") return "n/a"
    if (x + 0 >= 100 || x + 0 <= -100) return sprintf("%.0f", x)
    if (x + 0 >= 10 || x + 0 <= -10) return sprintf("%.1f", x)
    return sprintf("%.3g", x)
}
function jnum(x) { return x == "" ? "null" : sprintf("%.6g", x) }
function jstr(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }
function has(id) { return id in med }
# Why a figure is missing.
function why(id) {
    if (id ~ /^steps_/ && ENVIRON["BENCH_STEPS"] != 1) return "n/a (step engine missing)"
    if (id ~ /^aof_/ && ENVIRON["BENCH_AOF"] != 1) return "n/a (--no-aof)"
    if (ENVIRON["BENCH_QUICK"] == 1) return "n/a (not in --quick)"
    return "n/a (failed)"
}
function ratio(id, ref, mode) {
    if (ref == "" || mode == "" || !has(id) || !has(ref) || med[ref] + 0 == 0) return ""
    return mode == "pct" ? med[id] / med[ref] * 100 : med[id] / med[ref]
}
function ratio_text(r, mode, refname) {
    if (r == "") return ""
    if (mode == "pct") return sprintf("%s%% of %s", num(r), refname)
    return sprintf("%sx %s", num(r), refname)
}

FNR == NR { med[$1] = $2; lo[$1] = $3; hi[$1] = $4; cnt[$1] = $5; order[++nmetrics] = $1; next }
/^#/ || NF == 0 { next }
{
    split($0, f, "|")
    if (f[1] == "S") {
        rows[++nrows] = sprintf("| **%s** | | | | | |", f[2])
    } else if (f[1] == "R") {
        id = f[3]; unit = f[4]; ref = f[5]; mode = f[6]; refname = f[7]
        label = f[2]; sub(/^  /, "- ", label)
        if (!has(id)) {
            rows[++nrows] = sprintf("| %s | %s | | | %s | |", label, why(id), unit)
            fig[++nfig] = sprintf("%s: %s", jstr(id), jstr(why(id)))
            next
        }
        r = ratio(id, ref, mode)
        rows[++nrows] = sprintf("| %s | %s | %s | %s | %s | %s |", label, num(med[id]), num(lo[id]),
                                num(hi[id]), unit, ratio_text(r, mode, refname))
        fig[++nfig] = sprintf("%s: {\"label\": %s, \"unit\": %s, \"median\": %s, \"min\": %s, " \
                              "\"max\": %s, \"n\": %d, \"ratio\": %s, \"ratio_to\": %s}",
                              jstr(id), jstr(f[2]), jstr(unit), jnum(med[id]), jnum(lo[id]),
                              jnum(hi[id]), cnt[id], jnum(r), ref == "" ? "null" : jstr(ref))
    } else if (f[1] == "T") {
        name = f[2]; n = split(f[3], ids, ","); pick = f[4]; op = f[5]; thr = f[6]; mode = f[7]
        ref = f[8]; best = ""; from = ""
        for (i = 1; i <= n; i++) {
            if (!has(ids[i])) continue
            v = mode == "pct" ? ratio(ids[i], ref, "pct") : med[ids[i]]
            if (v == "") continue
            higher_better = op == ">="
            better = best == "" || (higher_better ? v > best : v < best)
            if ((pick == "best") == better || best == "") { best = v; from = ids[i] }
        }
        if (best == "") { verdict = "n/a"; met = "null" }
        else {
            ok = op == ">=" ? best >= thr : op == "<=" ? best <= thr : best < thr
            verdict = ok ? "met" : "NOT met"; met = ok ? "true" : "false"
        }
        shown = best == "" ? "n/a" : num(best) (mode == "pct" ? "%" : "")
        targets[++ntargets] = sprintf("| %s | %s | %s |", name, shown, verdict)
        tj[ntargets] = sprintf("%s: {\"value\": %s, \"op\": %s, \"threshold\": %s, \"in\": %s, " \
                               "\"from\": %s, \"met\": %s}", jstr(name), jnum(best), jstr(op),
                               thr, jstr(mode == "pct" ? "% of " ref : "value"),
                               from == "" ? "null" : jstr(from), met)
    }
}
END {
    printf "wf benchmark: %s; %s repetition(s) per figure; %s s; load average %s\n\n",
        ENVIRON["BENCH_MACHINE"], ENVIRON["BENCH_REPS"], ENVIRON["BENCH_ELAPSED"],
        ENVIRON["BENCH_LOAD"]
    print "| figure | median | min | max | unit | vs Redis's ceiling |"
    print "|---|---:|---:|---:|---|---|"
    for (i = 1; i <= nrows; i++) print rows[i]
    print ""
    print "| target | measured | |"
    print "|---|---:|---|"
    for (i = 1; i <= ntargets; i++) print targets[i]
    print ""
    printf "{\"machine\": %s, \"quick\": %s, \"repetitions\": %d, \"elapsed_s\": %d, " \
        "\"load_average\": %s,\n", jstr(ENVIRON["BENCH_MACHINE"]),
        ENVIRON["BENCH_QUICK"] == 1 ? "true" : "false", ENVIRON["BENCH_REPS"],
        ENVIRON["BENCH_ELAPSED"], jstr(ENVIRON["BENCH_LOAD"])
    printf " \"figures\": {\n"
    for (i = 1; i <= nfig; i++) printf "  %s%s\n", fig[i], i < nfig ? "," : ""
    printf " },\n \"targets\": {\n"
    for (i = 1; i <= ntargets; i++) printf "  %s%s\n", tj[i], i < ntargets ? "," : ""
    printf " },\n \"metrics\": {\n"
    for (i = 1; i <= nmetrics; i++)
        printf "  %s: [%s, %s, %s]%s\n", jstr(order[i]), jnum(med[order[i]]), jnum(lo[order[i]]),
            jnum(hi[order[i]]), i < nmetrics ? "," : ""
    printf " }\n}\n"
}
