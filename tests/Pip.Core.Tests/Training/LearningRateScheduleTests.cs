using Pip.Training;

namespace Pip.Core.Tests.Training;

public sealed class LearningRateScheduleTests
{
    private static readonly LearningRateSchedule Schedule = new(peakLearningRate: 1e-3, warmupSteps: 10, totalSteps: 100, minRatio: 0.1);

    [Fact]
    public void At_EndOfWarmup_IsPeak()
    {
        Schedule.At(9).Should().BeApproximately(1e-3, 1e-15);
        Schedule.PeakStep.Should().Be(9);
        Enumerable.Range(0, 100).Select(s => Schedule.At(s)).Max().Should().BeApproximately(1e-3, 1e-15);
    }

    [Fact]
    public void At_DuringWarmup_RisesLinearlyFromPeakOverWarmup()
    {
        Schedule.At(0).Should().BeApproximately(1e-4, 1e-15);
        Schedule.At(4).Should().BeApproximately(5e-4, 1e-15);
        for (int s = 1; s < 10; s++) Schedule.At(s).Should().BeGreaterThan(Schedule.At(s - 1));
    }

    [Fact]
    public void At_AfterWarmup_NeverRises()
    {
        for (int s = 10; s < 150; s++) Schedule.At(s).Should().BeLessThanOrEqualTo(Schedule.At(s - 1), $"step {s}");
        // Strictly falling inside the decay.
        Schedule.At(50).Should().BeLessThan(Schedule.At(20));
    }

    [Fact]
    public void At_LastStepAndBeyond_IsMinimum()
    {
        Schedule.At(99).Should().BeApproximately(1e-4, 1e-15);
        Schedule.At(98).Should().BeGreaterThan(1e-4);
        Schedule.At(1000).Should().BeApproximately(1e-4, 1e-15);
        Schedule.MinLearningRate.Should().BeApproximately(1e-4, 1e-18);
    }

    [Fact]
    public void At_MidwayThroughDecay_IsHalfwayBetweenPeakAndMinimum()
    {
        var schedule = new LearningRateSchedule(1.0, warmupSteps: 1, totalSteps: 101, minRatio: 0.0);
        // Peak at step 0, minimum at step 100; the cosine's midpoint is step 50.
        schedule.At(0).Should().Be(1.0);
        schedule.At(50).Should().BeApproximately(0.5, 1e-12);
        schedule.At(100).Should().BeApproximately(0.0, 1e-12);
    }

    [Fact]
    public void At_NoWarmup_StartsAtPeak()
    {
        var schedule = new LearningRateSchedule(2.0, warmupSteps: 0, totalSteps: 5, minRatio: 0.5);
        schedule.At(0).Should().Be(2.0);
        schedule.At(4).Should().BeApproximately(1.0, 1e-12);
    }

    [Fact]
    public void At_NegativeStep_Throws()
    {
        var act = () => Schedule.At(-1);
        act.Should().Throw<ArgumentOutOfRangeException>();
    }

    [Theory]
    [InlineData(0.0, 10, 100, 0.1)]
    [InlineData(1e-3, 100, 100, 0.1)]
    [InlineData(1e-3, -1, 100, 0.1)]
    [InlineData(1e-3, 0, 0, 0.1)]
    [InlineData(1e-3, 0, 10, 1.5)]
    public void Ctor_OutOfRange_Throws(double peak, long warmup, long total, double minRatio)
    {
        var act = () => new LearningRateSchedule(peak, warmup, total, minRatio);
        act.Should().Throw<ArgumentOutOfRangeException>();
    }
}
