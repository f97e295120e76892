namespace Pip.Tests.Width;

public sealed class WidthAllocatorTests
{
    private static WidthLayerSizes[] Layers(int count, int heads = 8, long headParameters = 400, int channels = 100, long channelParameters = 30) =>
        [.. Enumerable.Range(0, count).Select(l => new WidthLayerSizes(l, heads, headParameters, channels, channelParameters))];

    /// <summary>Scores that rank units by a hash of (layer, unit), so the lowest are not simply the first.</summary>
    private static WidthScores Scores(int layers, int heads = 8, int channels = 100, Func<int, int, double>? head = null, Func<int, int, double>? channel = null) => new(
        [.. Enumerable.Range(0, layers).Select(l => (IReadOnlyList<double>)[.. Enumerable.Range(0, heads).Select(u => head?.Invoke(l, u) ?? ((u * 7 + l * 3) % heads))])],
        [.. Enumerable.Range(0, layers).Select(l => (IReadOnlyList<double>)[.. Enumerable.Range(0, channels).Select(u => channel?.Invoke(l, u) ?? ((u * 37 + l) % channels))])]);

    [Theory]
    [InlineData(10_000.0)]
    [InlineData(12_345.0)]
    [InlineData(17_000.0)]
    public void Allocate_UniformBoth_HitsTheBudgetWithinOneChannelPerLayerAndGivesEveryLayerOneShape(double budget)
    {
        var layers = Layers(4);

        var result = WidthAllocator.Allocate(layers, Scores(4), WidthUnits.Both, WidthAllocation.Uniform, budget);

        long removed = result.Heads.Values.Sum(h => h.Count) * 400L + result.Channels.Values.Sum(c => c.Count) * 30L;
        result.RemovedParameters.Should().Be(removed);
        removed.Should().BeLessThanOrEqualTo((long)budget);
        (budget - removed).Should().BeLessThan(4 * 30, "the shortfall is less than one channel per layer");
        result.Heads.Values.Select(h => h.Count).Distinct().Should().HaveCountLessThanOrEqualTo(1);
        result.Channels.Values.Select(c => c.Count).Distinct().Should().ContainSingle();
        result.Channels.Should().HaveCount(4);
        result.TargetReached.Should().BeTrue();
    }

    [Fact]
    public void Allocate_UniformBoth_HeadsAndChannelsLoseAboutTheSameFraction()
    {
        // Prunable: 4 × (8 × 400 + 100 × 30) = 24,800; a quarter is 6,200 → 2 of 8 groups and 25 of 100 channels per layer.
        var result = WidthAllocator.Allocate(Layers(4), Scores(4), WidthUnits.Both, WidthAllocation.Uniform, 6_200);

        result.Heads.Values.Should().OnlyContain(h => h.Count == 2);
        result.Channels.Values.Should().OnlyContain(c => c.Count == 25);
        result.RemovedParameters.Should().Be(6_200);
    }

    [Fact]
    public void Allocate_Uniform_RemovesTheLowestScoringUnitsOfEachLayer()
    {
        var result = WidthAllocator.Allocate(Layers(2), Scores(2, head: (l, u) => l == 0 ? u : -u, channel: (l, u) => (u * 13) % 100), WidthUnits.Heads, WidthAllocation.Uniform, 2 * 3 * 400);

        result.Heads[0].Should().Equal(0, 1, 2);
        result.Heads[1].Should().Equal(5, 6, 7);
        result.Channels.Should().BeEmpty();
    }

    [Fact]
    public void Allocate_UniformHeadsOnly_ShortfallIsLessThanOneGroupPerLayer()
    {
        var result = WidthAllocator.Allocate(Layers(3), Scores(3), WidthUnits.Heads, WidthAllocation.Uniform, 3 * 400 * 2.9);

        result.Heads.Values.Should().OnlyContain(h => h.Count == 2);
        result.RemovedParameters.Should().Be(3 * 2 * 400);
        result.TargetReached.Should().BeTrue();
    }

    [Fact]
    public void Allocate_BudgetBeyondTheLayers_KeepsOneUnitOfEachKindAndReportsTheTargetMissed()
    {
        var result = WidthAllocator.Allocate(Layers(2), Scores(2), WidthUnits.Both, WidthAllocation.Uniform, 1e9);

        result.Heads.Values.Should().OnlyContain(h => h.Count == 7);
        result.Channels.Values.Should().OnlyContain(c => c.Count == 99);
        result.TargetReached.Should().BeFalse();

        var adaptive = WidthAllocator.Allocate(Layers(2), Scores(2), WidthUnits.Both, WidthAllocation.Adaptive, 1e9);
        adaptive.Heads.Values.Should().OnlyContain(h => h.Count == 7);
        adaptive.Channels.Values.Should().OnlyContain(c => c.Count == 99);
        adaptive.TargetReached.Should().BeFalse();
    }

    [Fact]
    public void Allocate_Adaptive_StandardizesEachKindAndRanksAcrossLayers()
    {
        // Channel scores are 1000× the head scores: unstandardized, every head would go first. Standardized, layer 1's
        // units (all low) go before layer 0's, whatever their kind.
        var scores = Scores(2, heads: 8, channels: 100,
            head: (l, u) => l == 0 ? 10 + u * 0.01 : 1 + u * 0.01,
            channel: (l, u) => l == 0 ? 10_000 + u : 1_000 + u);

        double budget = 4 * 400 + 20 * 30;
        var result = WidthAllocator.Allocate(Layers(2), scores, WidthUnits.Both, WidthAllocation.Adaptive, budget);

        result.Heads.Should().NotContainKey(0, "layer 0's heads are its layer's best, although lower than every channel score");
        result.Channels.Should().NotContainKey(0);
        result.Heads[1].Should().StartWith([0, 1]);
        result.Channels[1].Should().HaveCountGreaterThan(20, "layer 1's channels rank among its heads once standardized");
        result.RemovedParameters.Should().BeLessThanOrEqualTo((long)budget);
        (budget - result.RemovedParameters).Should().BeLessThan(30);
        result.TargetReached.Should().BeTrue();
    }

    [Fact]
    public void Allocate_AdaptiveUnitTooBig_SkipsItAndFillsWithSmallerOnes()
    {
        // Head 0 has the lowest standardized score (−2.65) but does not fit in 350 parameters: channels (30 each) fill it.
        var scores = Scores(1, head: (_, u) => u == 0 ? 0 : 100, channel: (_, u) => u);

        var result = WidthAllocator.Allocate(Layers(1), scores, WidthUnits.Both, WidthAllocation.Adaptive, 350);
        var roomy = WidthAllocator.Allocate(Layers(1), scores, WidthUnits.Both, WidthAllocation.Adaptive, 500);

        result.Heads.Should().BeEmpty();
        result.Channels[0].Should().Equal(Enumerable.Range(0, 11));
        result.RemovedParameters.Should().Be(330);
        result.TargetReached.Should().BeTrue();
        roomy.Heads[0].Should().Equal(0);
        roomy.Channels[0].Should().Equal(0, 1, 2);
    }

    [Fact]
    public void Allocate_WrongScoreCount_ThrowsNamingTheLayer()
    {
        var scores = new WidthScores([[1, 2], [1, 2, 3, 4, 5, 6, 7, 8]], null);

        FluentActions.Invoking(() => WidthAllocator.Allocate(Layers(2), scores, WidthUnits.Heads, WidthAllocation.Uniform, 100))
            .Should().Throw<ArgumentException>().WithMessage("Layer 0 has 8 key/value groups but 2 scores*");
        FluentActions.Invoking(() => WidthAllocator.Allocate(Layers(2), scores, WidthUnits.Channels, WidthAllocation.Uniform, 100))
            .Should().Throw<ArgumentException>().WithMessage("No channels scores*");
    }

    [Theory]
    [InlineData(32, 4, 30)]
    [InlineData(12, 2, 11)]
    [InlineData(4, 1, 4)]
    [InlineData(1, 0, 1)]
    public void DefaultLayerRange_LikeLlmPruner_SkipsTheFirstFourAndLastTwoThirtySeconds(int layers, int start, int end) =>
        WidthConstants.DefaultLayerRange(layers).Should().Be((start, end));
}
