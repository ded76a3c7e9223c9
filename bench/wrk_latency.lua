-- wrk script of bench/run.sh's http scenario: prints the p99.9 latency that wrk --latency leaves
-- out, in microseconds, as a line "p99.9_us VALUE" after wrk's own report.
done = function(summary, latency, requests)
    io.write(string.format("p99.9_us %.1f\n", latency:percentile(99.9)))
end
