using Pip.Training;

namespace Pip.Core.Tests.Training;

public sealed class EarlyStoppingTests
{
    [Fact]
    public void HasFlattened_StillImproving_False() =>
        EarlyStopping.HasFlattened([5.0, 4.0, 3.5, 3.2, 3.0], patience: 2, minDelta: 0.1).Should().BeFalse();

    [Fact]
    public void HasFlattened_RecentGainBelowDelta_True() =>
        EarlyStopping.HasFlattened([5.0, 4.0, 3.00, 2.99, 3.01], patience: 2, minDelta: 0.05).Should().BeTrue();

    [Fact]
    public void HasFlattened_RecentLossesWorse_True() =>
        EarlyStopping.HasFlattened([5.0, 3.0, 3.2, 3.4], patience: 2, minDelta: 0.0).Should().BeTrue();

    [Fact]
    public void HasFlattened_TooFewEvaluations_False() =>
        EarlyStopping.HasFlattened([5.0, 5.0], patience: 2, minDelta: 0.1).Should().BeFalse();

    [Fact]
    public void HasFlattened_BadPatience_Throws()
    {
        var act = () => EarlyStopping.HasFlattened([1.0], patience: 0, minDelta: 0.1);
        act.Should().Throw<ArgumentOutOfRangeException>();
    }
}
