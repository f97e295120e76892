using Pip.Evaluation;

namespace Pip.Core.Tests.Evaluation;

public sealed class DecodeTimingTests
{
    /// <summary>A clock that only moves when told to; one tick is one microsecond.</summary>
    private sealed class ManualClock : TimeProvider
    {
        public long Now { get; set; }
        public override long TimestampFrequency => 1_000_000;
        public override long GetTimestamp() => Now;
        public void AdvanceMs(double ms) => Now += (long)Math.Round(ms * 1000);
    }

    [Fact]
    public void Measure_SlowWarmupRuns_AreExcludedFromMedians()
    {
        var clock = new ManualClock();
        var run = 0;
        // Warm-up runs (the first two) take 500 ms a token; measured runs 10, 20, 30 ms a token after a 100 ms first token.
        double[] measuredStep = [10, 30, 20];
        var result = DecodeTiming.Measure(onToken =>
        {
            for (var t = 0; t < 5; t++)
            {
                clock.AdvanceMs(run < 2 ? 500 : t == 0 ? 100 : measuredStep[run - 2]);
                onToken();
            }
            run++;
        }, warmupRuns: 2, measuredRuns: 3, clock);

        run.Should().Be(5);
        result.WarmupRuns.Should().HaveCount(2);
        result.WarmupRuns.Should().AllSatisfy(r => r.TimePerOutputToken.Should().BeApproximately(0.5, 1e-9));
        result.MeasuredRuns.Should().HaveCount(3);
        result.MeasuredRuns.Select(r => r.Tokens).Should().AllBeEquivalentTo(5);
        result.MeasuredRuns.Select(r => r.TimePerOutputToken).Should().Equal(new[] { 0.010, 0.030, 0.020 }, (a, b) => Math.Abs(a - b) < 1e-9);
        result.MedianTimePerOutputToken.Should().BeApproximately(0.020, 1e-9);
        result.MedianTimeToFirstToken.Should().BeApproximately(0.100, 1e-9);
        // (100 + 4 × 20) / 5 ms for the median run.
        result.MedianTimePerTokenWithPrompt.Should().BeApproximately(0.036, 1e-9);
    }

    [Fact]
    public void Measure_TimeBeforeTheRun_IsNotCounted()
    {
        var clock = new ManualClock();
        var calls = 0;
        var result = DecodeTiming.Measure(onToken =>
        {
            clock.AdvanceMs(7);
            onToken();
            clock.AdvanceMs(3);
            onToken();
            calls++;
            clock.AdvanceMs(1000); // after the last token: not part of the run
        }, warmupRuns: 0, measuredRuns: 2, clock);
        calls.Should().Be(2);
        result.MeasuredRuns.Should().AllSatisfy(r => r.TokenTimes.Should().Equal(new[] { 0.007, 0.010 }, (a, b) => Math.Abs(a - b) < 1e-9));
    }

    [Fact]
    public void Measure_BadCounts_Throw()
    {
        ((Action)(() => DecodeTiming.Measure(_ => { }, -1, 1))).Should().Throw<ArgumentOutOfRangeException>();
        ((Action)(() => DecodeTiming.Measure(_ => { }, 0, 0))).Should().Throw<ArgumentOutOfRangeException>();
    }

    [Theory]
    [InlineData(new[] { 3.0 }, 3.0)]
    [InlineData(new[] { 5.0, 1.0, 3.0 }, 3.0)]
    [InlineData(new[] { 4.0, 1.0, 3.0, 2.0 }, 2.5)]
    public void Median_OddAndEven(double[] values, double expected) => DecodeTiming.Median(values).Should().Be(expected);

    [Fact]
    public void DecodeRun_OneToken_HasNoTimePerOutputToken()
    {
        var run = new DecodeRun([0.5]);
        run.TimePerOutputToken.Should().Be(double.NaN);
        run.TimeToFirstToken.Should().Be(0.5);
        run.TimePerTokenWithPrompt.Should().Be(0.5);
    }
}
