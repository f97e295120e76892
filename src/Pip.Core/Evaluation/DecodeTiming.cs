namespace Pip.Evaluation;

/// <summary>The timing of one generation run.</summary>
/// <param name="TokenTimes">Seconds from the start of the run to each generated token (non-decreasing).</param>
public sealed record DecodeRun(IReadOnlyList<double> TokenTimes)
{
    /// <summary>The number of generated tokens.</summary>
    public int Tokens => TokenTimes.Count;

    /// <summary>Seconds from the start to the first token (the prompt's forward pass plus one step); NaN without tokens.</summary>
    public double TimeToFirstToken => TokenTimes.Count == 0 ? double.NaN : TokenTimes[0];

    /// <summary>Seconds from the start to the last token; 0 without tokens.</summary>
    public double TotalTime => TokenTimes.Count == 0 ? 0 : TokenTimes[^1];

    /// <summary>
    /// Time per output token: the mean seconds per token after the first, (t_last − t_first) / (tokens − 1), which
    /// leaves out the prompt's forward pass; NaN with fewer than two tokens.
    /// </summary>
    public double TimePerOutputToken => TokenTimes.Count < 2 ? double.NaN : (TokenTimes[^1] - TokenTimes[0]) / (TokenTimes.Count - 1);

    /// <summary>Total time over the number of tokens (prompt pass included); NaN without tokens.</summary>
    public double TimePerTokenWithPrompt => TokenTimes.Count == 0 ? double.NaN : TotalTime / TokenTimes.Count;
}

/// <summary>Timings of a decoding benchmark: warm-up runs (reported, not measured) and measured runs.</summary>
/// <param name="WarmupRuns">The warm-up runs, excluded from every statistic.</param>
/// <param name="MeasuredRuns">The measured runs.</param>
public sealed record DecodeTimingResult(IReadOnlyList<DecodeRun> WarmupRuns, IReadOnlyList<DecodeRun> MeasuredRuns)
{
    /// <summary>The median over measured runs of <see cref="DecodeRun.TimePerOutputToken"/> (seconds).</summary>
    public double MedianTimePerOutputToken => DecodeTiming.Median(MeasuredRuns.Select(r => r.TimePerOutputToken).ToArray());

    /// <summary>The median over measured runs of <see cref="DecodeRun.TimeToFirstToken"/> (seconds).</summary>
    public double MedianTimeToFirstToken => DecodeTiming.Median(MeasuredRuns.Select(r => r.TimeToFirstToken).ToArray());

    /// <summary>The median over measured runs of <see cref="DecodeRun.TimePerTokenWithPrompt"/> (seconds).</summary>
    public double MedianTimePerTokenWithPrompt => DecodeTiming.Median(MeasuredRuns.Select(r => r.TimePerTokenWithPrompt).ToArray());
}

/// <summary>
/// Times repeated generation runs with an injectable clock: each run calls back after every token, the callback
/// timestamps it; the first runs are warm-up and excluded from the statistics.
/// </summary>
public static class DecodeTiming
{
    /// <summary>Runs and times a generation several times.</summary>
    /// <param name="generate">
    /// Runs one generation; it must call the action it is given once after each token is produced (and available on
    /// the host, so that asynchronous devices are synchronised).
    /// </param>
    /// <param name="warmupRuns">Runs made first and left out of the statistics (at least 0).</param>
    /// <param name="measuredRuns">Runs measured (at least 1).</param>
    /// <param name="clock">The clock, or null for <see cref="TimeProvider.System"/>.</param>
    /// <param name="cancellationToken">Checked before every run.</param>
    /// <returns>The timings.</returns>
    public static DecodeTimingResult Measure(Action<Action> generate, int warmupRuns, int measuredRuns, TimeProvider? clock = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(generate);
        ArgumentOutOfRangeException.ThrowIfNegative(warmupRuns);
        ArgumentOutOfRangeException.ThrowIfLessThan(measuredRuns, 1);
        clock ??= TimeProvider.System;
        var warmup = new List<DecodeRun>(warmupRuns);
        var measured = new List<DecodeRun>(measuredRuns);
        for (var run = 0; run < warmupRuns + measuredRuns; run++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var times = new List<double>();
            var start = clock.GetTimestamp();
            generate(() => times.Add(clock.GetElapsedTime(start).TotalSeconds));
            (run < warmupRuns ? warmup : measured).Add(new DecodeRun(times));
        }
        return new DecodeTimingResult(warmup, measured);
    }

    /// <summary>The median (mean of the two middle values for an even count); NaN when empty.</summary>
    /// <param name="values">The values.</param>
    /// <returns>The median.</returns>
    public static double Median(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count == 0) return double.NaN;
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
