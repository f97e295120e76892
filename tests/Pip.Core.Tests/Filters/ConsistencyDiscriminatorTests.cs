namespace Pip.Tests.Filters;

public class ConsistencyDiscriminatorTests
{
    private static readonly FakeModel Model = new(3);

    private static ICandidateFilter Create(double threshold = 0.5, int minimum = 1) =>
        new ConsistencyDiscriminator(new ConsistencyDiscriminatorOptions { Threshold = threshold, MinimumCandidates = minimum });

    [Fact]
    public void CoefficientOfVariation_KnownValues_IsPopulationStdOverAbsMean()
    {
        IReadOnlyList<IReadOnlyList<double>> sets = [[2.0, 0, -2], [4.0, 0, -4]];

        ConsistencyDiscriminator.CoefficientOfVariation(sets, 0).Should().BeApproximately(1.0 / 3, 1e-12);
        ConsistencyDiscriminator.CoefficientOfVariation(sets, 1).Should().Be(0);
        ConsistencyDiscriminator.CoefficientOfVariation(sets, 2).Should().BeApproximately(1.0 / 3, 1e-12);
        ConsistencyDiscriminator.CoefficientOfVariation([[1.0], [-1.0]], 0).Should().Be(double.PositiveInfinity);
    }

    [Fact]
    public void Filter_LayerWithHighCv_IsExcludedWithReason()
    {
        // Layer 1: 1, 2, 0.2 → mean 1.0667, std 0.7364, CV 0.690.
        var scores = new LayerScores([1, 1.07, 1], [[1, 1, 1], [1, 2, 1], [1, 0.2, 1]]);

        CandidateFilterResult result = Create().Filter(Model, scores, [0, 1, 2]);

        result.Kept.Should().Equal(0, 2);
        result.Excluded.Should().ContainSingle().Which.Key.Should().Be(1);
        result.Excluded[1].Should().Contain("0.69").And.Contain("exceeds 0.5").And.Contain("3 perturbation sets");
    }

    [Fact]
    public void Filter_OnlySeesCandidates()
    {
        var scores = new LayerScores([1, 1, 1], [[1, 1, 1], [1, 2, 9], [1, 0.2, 1]]);

        CandidateFilterResult result = Create().Filter(Model, scores, [0, 2]);

        result.Kept.Should().Equal(0);
        result.Excluded.Keys.Should().Equal(2);
    }

    [Fact]
    public void Filter_NoPerSetScores_PassesEverything()
    {
        CandidateFilterResult result = Create().Filter(Model, new LayerScores([1, 2, 3]), [0, 1, 2]);

        result.Kept.Should().Equal(0, 1, 2);
        result.Excluded.Should().BeEmpty();
    }

    [Fact]
    public void Filter_AllExceed_KeepsMostConsistentAndSaysSo()
    {
        // CVs: layer 0 = 1/3, layer 1 = 0.6, layer 2 = infinite.
        var scores = new LayerScores([3, 5, 0], [[2, 2, 1], [4, 8, -1]]);

        CandidateFilterResult result = Create(threshold: 0.1).Filter(Model, scores, [0, 1, 2]);

        result.Kept.Should().Equal(0);
        result.Excluded.Keys.Should().BeEquivalentTo([1, 2]);
        result.Excluded.Values.Should().OnlyContain(r => r.Contains("0 (CV 0.333) stayed candidate so that pruning can progress"));
    }

    [Fact]
    public void Filter_MinimumCandidatesZero_MayExcludeAll()
    {
        var scores = new LayerScores([3, 5, 0], [[2, 2, 1], [4, 8, -1]]);

        Create(threshold: 0.1, minimum: 0).Filter(Model, scores, [0, 1, 2]).Kept.Should().BeEmpty();
    }
}
