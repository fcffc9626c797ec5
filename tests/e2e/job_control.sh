# Job control under emu against native (tests/e2e/dynamic_test.cpp, Dynamic.JobControlMatchesNative):
# background jobs in their own process groups, `wait -n`, `jobs`, kill of a whole job, and a
# pipeline job whose members share one group.
set -m
sleep 0.3 & a=$!
sleep 0.1 & b=$!
kill -0 -- -"$a" && echo "job a leads its group"
wait -n; echo "first done: $?"
wait -n; echo "second done: $?"
(exit 3) & wait $!; echo "status of a failing job: $?"
sleep 10 | sleep 10 & p=$!
kill -TERM -- -"$p"
wait "$p"; echo "pipeline killed by group: $?"
jobs
echo done
