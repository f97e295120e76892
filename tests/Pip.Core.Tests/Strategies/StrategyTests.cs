namespace Pip.Tests.Strategies;

public class StrategyTests
{
    [Fact]
    public void OneShot_Decide_RemovesAllThatFitAndStops()
    {
        var model = new FakeModel(10, 100, 1000);
        PruningState state = TargetPlannerTests.State(model, PruningTarget.Ratio(0.2), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);

        PruningDecision decision = new OneShotStrategy().Decide(state);

        decision.LayersToRemove.Should().Equal(9, 8, 7, 6);
        decision.Continue.Should().BeFalse();
    }

    [Fact]
    public void IterativeGreedy_Decide_RemovesLayersPerRoundAndContinues()
    {
        var model = new FakeModel(10, 100, 1000);
        PruningState state = TargetPlannerTests.State(model, PruningTarget.Ratio(0.2), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);

        PruningDecision one = new IterativeGreedyStrategy(new IterativeGreedyStrategyOptions()).Decide(state);
        PruningDecision three = new IterativeGreedyStrategy(new IterativeGreedyStrategyOptions { LayersPerRound = 3 }).Decide(state);

        one.LayersToRemove.Should().Equal(9);
        one.Continue.Should().BeTrue();
        three.LayersToRemove.Should().Equal(9, 8, 7);
        three.Continue.Should().BeTrue();
    }

    [Fact]
    public void IterativeGreedy_Decide_LastRoundTakesFewerAndStops()
    {
        var model = new FakeModel(10, 100, 1000);
        PruningState state = TargetPlannerTests.State(model, PruningTarget.Ratio(0.2), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]) with { RemovedParameterCount = 300, RemovedLayerCount = 3 };

        PruningDecision decision = new IterativeGreedyStrategy(new IterativeGreedyStrategyOptions { LayersPerRound = 3 }).Decide(state);

        decision.LayersToRemove.Should().Equal(9);
        decision.Continue.Should().BeFalse();
    }

    [Fact]
    public void Names_AreStable()
    {
        new OneShotStrategy().Name.Should().Be("one-shot");
        new IterativeGreedyStrategy(new IterativeGreedyStrategyOptions()).Name.Should().Be("iterative");
    }
}
