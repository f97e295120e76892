namespace Pip.Tests.Filters;

public class LayerGuardTests
{
    [Fact]
    public void Filter_FirstAndLast_ExcludesByOriginalIndex()
    {
        var model = new FakeModel(6);
        model.RemoveLayers([3]); // current layers: original 0, 1, 2, 4, 5
        var guard = new LayerGuard(new LayerGuardOptions { First = 2, Last = 1 });

        CandidateFilterResult result = guard.Filter(model, new LayerScores([0, 0, 0, 0, 0]), [0, 1, 2, 3, 4]);

        result.Kept.Should().Equal(2, 3);
        result.Excluded.Keys.Should().BeEquivalentTo([0, 1, 4]);
        result.Excluded[4].Should().Contain("original layer 5").And.Contain("last 1 of 6");
        result.Excluded[0].Should().Contain("original layer 0").And.Contain("first 2");
    }

    [Fact]
    public void Filter_OriginalLayerCountGiven_UsesIt()
    {
        var model = new FakeModel(6);
        model.RemoveLayers([5]); // the original last layer is gone: inference would think there were 5
        var guard = new LayerGuard(new LayerGuardOptions { Last = 1, OriginalLayerCount = 6 });

        guard.Filter(model, new LayerScores([0, 0, 0, 0, 0]), [0, 1, 2, 3, 4]).Kept.Should().Equal(0, 1, 2, 3, 4);
    }

    [Fact]
    public void Filter_NothingGuarded_KeepsAll()
    {
        var guard = new LayerGuard(new LayerGuardOptions());

        guard.Filter(new FakeModel(3), new LayerScores([0, 0, 0]), [0, 1, 2]).Kept.Should().Equal(0, 1, 2);
    }
}
