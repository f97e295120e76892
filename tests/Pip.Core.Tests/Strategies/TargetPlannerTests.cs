namespace Pip.Tests.Strategies;

public class TargetPlannerTests
{
    private const long Llama3LayerParameters = 218_112_000;
    private const long Llama3TotalParameters = 8_030_261_248;

    [Fact]
    public void CountLayersWithinRatio_Llama3_8BAt20Percent_IsSevenLayers()
    {
        int layers = TargetPlanner.CountLayersWithinRatio(Llama3TotalParameters, Enumerable.Repeat(Llama3LayerParameters, 32), 0.2);

        layers.Should().Be(7);
        double ratio = 7.0 * Llama3LayerParameters / Llama3TotalParameters;
        ratio.Should().BeApproximately(0.190, 0.0005);
        (8.0 * Llama3LayerParameters / Llama3TotalParameters).Should().BeGreaterThan(0.2);
    }

    [Fact]
    public void SelectLayers_Llama3_8BModelAt20Percent_SelectsSevenLowest()
    {
        long other = Llama3TotalParameters - 32 * Llama3LayerParameters;
        var model = new FakeModel(32, Llama3LayerParameters, other);
        model.ParameterCount.Should().Be(Llama3TotalParameters);
        double[] scores = [.. Enumerable.Range(0, 32).Select(i => (double)((i * 7) % 32))];
        PruningState state = State(model, PruningTarget.Ratio(0.2), scores);

        IReadOnlyList<int> chosen = TargetPlanner.SelectLayers(state, int.MaxValue);

        chosen.Should().HaveCount(7);
        chosen.Select(l => scores[l]).Should().Equal(0, 1, 2, 3, 4, 5, 6);
    }

    [Fact]
    public void Fits_RatioExactlyKLayers_AdmitsKLayers()
    {
        double ratio = 3.0 * 100 / 1300; // three layers of 100 out of 1300, computed in floating point
        TargetPlanner.CountLayersWithinRatio(1300, Enumerable.Repeat(100L, 10), ratio).Should().Be(3);
    }

    [Fact]
    public void CountLayersWithinRatio_LayerTooBigStopsSelection_EvenIfSmallerOnesFollow()
    {
        TargetPlanner.CountLayersWithinRatio(1000, [100, 150, 10], 0.2).Should().Be(1);
    }

    [Fact]
    public void SelectLayers_OnlyCandidatesByAscendingScore_TiesByIndex()
    {
        var model = new FakeModel(6);
        PruningState state = State(model, PruningTarget.LayerCount(3), [5, 1, 1, 0, 2, 3], candidates: [0, 1, 2, 4, 5]);

        TargetPlanner.SelectLayers(state, int.MaxValue).Should().Equal(1, 2, 4);
        TargetPlanner.SelectLayers(state, 2).Should().Equal(1, 2);
    }

    [Fact]
    public void SelectLayers_LayerTargetPartlyDone_TakesTheRest()
    {
        var model = new FakeModel(6);
        PruningState state = State(model, PruningTarget.LayerCount(3), [5, 4, 3, 2, 1, 0]) with { RemovedLayerCount = 2, RemovedParameterCount = 200 };

        TargetPlanner.SelectLayers(state, int.MaxValue).Should().Equal(5);
    }

    [Fact]
    public void SelectLayers_HugeRatio_LeavesOneLayer()
    {
        var model = new FakeModel(4, 100, 0);

        TargetPlanner.SelectLayers(State(model, PruningTarget.Ratio(0.99), [0, 1, 2, 3]), int.MaxValue).Should().Equal(0, 1, 2);
    }

    [Fact]
    public void IsReached_RatioAndLayerTargets()
    {
        var model = new FakeModel(10, 100, 1000); // 2000 parameters; 0.2 → 400 → 4 layers
        TargetPlanner.IsReached(model, PruningTarget.Ratio(0.2), 2000, 300, 3).Should().BeFalse();
        TargetPlanner.IsReached(model, PruningTarget.Ratio(0.2), 2000, 400, 4).Should().BeTrue();
        TargetPlanner.IsReached(model, PruningTarget.LayerCount(2), 2000, 100, 1).Should().BeFalse();
        TargetPlanner.IsReached(model, PruningTarget.LayerCount(2), 2000, 200, 2).Should().BeTrue();
    }

    [Fact]
    public void IsReachedAfter_CountsLayersBeingRemoved()
    {
        var model = new FakeModel(10, 100, 1000);
        PruningState state = State(model, PruningTarget.Ratio(0.2), new double[10]) with { RemovedParameterCount = 300, RemovedLayerCount = 3 };

        TargetPlanner.IsReachedAfter(state, []).Should().BeFalse();
        TargetPlanner.IsReachedAfter(state, [0]).Should().BeTrue();
    }

    internal static PruningState State(FakeModel model, PruningTarget target, double[] scores, int[]? candidates = null) =>
        new(model, model.ParameterCount, 0, 0, target, new LayerScores(scores), candidates ?? [.. Enumerable.Range(0, model.LayerCount)], 0);
}
