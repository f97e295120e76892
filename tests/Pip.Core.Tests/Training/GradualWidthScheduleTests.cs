using Pip.Training;

namespace Pip.Core.Tests.Training;

public sealed class GradualWidthScheduleTests
{
    [Theory]
    [InlineData(WidthScheduleShape.Linear)]
    [InlineData(WidthScheduleShape.Cubic)]
    public void KeptWidthAt_WholeRun_FullBeforeTargetFromLastWindowStepAndNeverRising(WidthScheduleShape shape)
    {
        var schedule = new GradualWidthSchedule(fullWidth: 96, targetWidth: 40, startStep: 20, endStep: 57, updateInterval: 5, shape);

        for (int s = 0; s < 20; s++) schedule.KeptWidthAt(s).Should().Be(96, $"step {s} is before the window");
        schedule.KeptWidthAt(20).Should().BeLessThan(96, "the first update removes some");
        schedule.KeptWidthAt(55).Should().BeGreaterThan(40, "the window's second-to-last step is not the end");
        schedule.KeptWidthAt(56).Should().Be(40, "the last step of the window reaches the target");
        for (int s = 57; s < 200; s++) schedule.KeptWidthAt(s).Should().Be(40);
        for (int s = 1; s < 200; s++) schedule.KeptWidthAt(s).Should().BeLessThanOrEqualTo(schedule.KeptWidthAt(s - 1), $"step {s}");
        // Between updates the width holds.
        schedule.KeptWidthAt(21).Should().Be(schedule.KeptWidthAt(20));
        schedule.KeptWidthAt(24).Should().Be(schedule.KeptWidthAt(20));
    }

    [Fact]
    public void KeptWidthAt_Linear_MatchesHandComputedSteps()
    {
        // Window [10, 18), updates at 10, 12, 14, 16 and 17; p = 1/8, 3/8, 5/8, 7/8, 1; kept = 2 + ⌈8(1 − p)⌉.
        var schedule = new GradualWidthSchedule(10, 2, 10, 18, 2, WidthScheduleShape.Linear);
        Enumerable.Range(8, 12).Select(s => schedule.KeptWidthAt(s)).Should().Equal(10, 10, 9, 9, 7, 7, 5, 5, 3, 2, 2, 2);
        Enumerable.Range(0, 25).Where(s => schedule.IsUpdateStep(s)).Should().Equal(10, 12, 14, 16, 17);
        schedule.UpdateCount.Should().Be(5);
    }

    [Fact]
    public void WidthAtProgress_CubicAndLinear_FollowTheirFormula()
    {
        var cubic = new GradualWidthSchedule(10, 2, 0, 8, 1, WidthScheduleShape.Cubic);
        var linear = new GradualWidthSchedule(10, 2, 0, 8, 1, WidthScheduleShape.Linear);
        cubic.WidthAtProgress(0).Should().Be(10);
        cubic.WidthAtProgress(0.5).Should().Be(3, "2 + ⌈8 · 0.125⌉");
        cubic.WidthAtProgress(0.25).Should().Be(6, "2 + ⌈8 · 0.421875⌉ = 2 + ⌈3.375⌉");
        cubic.WidthAtProgress(1).Should().Be(2);
        linear.WidthAtProgress(0.5).Should().Be(6, "2 + 8 · 0.5 exactly, not rounded up by noise");
        linear.WidthAtProgress(1).Should().Be(2);
        // Cubic removes faster early on.
        for (int s = 0; s < 7; s++) cubic.KeptWidthAt(s).Should().BeLessThanOrEqualTo(linear.KeptWidthAt(s));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(1, 7)]
    [InlineData(3, 7)]
    [InlineData(4, 9)]
    [InlineData(10, 3)]
    public void UpdateCount_CountsUpdateSteps(int interval, int length)
    {
        var schedule = new GradualWidthSchedule(50, 10, 5, 5 + length, interval);
        schedule.UpdateCount.Should().Be(Enumerable.Range(0, 40).Count(s => schedule.IsUpdateStep(s)));
        schedule.IsUpdateStep(5 + length - 1).Should().BeTrue();
        schedule.IsUpdateStep(5).Should().BeTrue();
    }

    [Fact]
    public void Ctor_InvalidArguments_Throw()
    {
        FluentActions.Invoking(() => new GradualWidthSchedule(10, 11, 0, 5)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("targetWidth");
        FluentActions.Invoking(() => new GradualWidthSchedule(10, 0, 0, 5)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("targetWidth");
        FluentActions.Invoking(() => new GradualWidthSchedule(10, 5, 5, 5)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("endStep");
        FluentActions.Invoking(() => new GradualWidthSchedule(10, 5, -1, 5)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("startStep");
        FluentActions.Invoking(() => new GradualWidthSchedule(10, 5, 0, 5, 0)).Should().Throw<ArgumentOutOfRangeException>().WithParameterName("updateInterval");
        FluentActions.Invoking(() => new GradualWidthSchedule(10, 5, 0, 5).KeptWidthAt(-1)).Should().Throw<ArgumentOutOfRangeException>();
    }
}
