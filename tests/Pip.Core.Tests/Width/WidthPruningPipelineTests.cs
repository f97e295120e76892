using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Pip.Tests.Width;

public sealed class WidthPruningPipelineTests
{
    private static readonly IReadOnlyList<CalibrationSample> Samples = [new(0, "alpha beta"), new(1, "gamma")];

    private static FakeWidthMetric ByUnit() => new("by-unit", (l, kind, u) => kind == WidthUnitKind.Heads ? 100 - u : 1000 + l * 10 - u);

    [Fact]
    public async Task RunAsync_UniformRatio_RemovesUnitsInTheRangeAndReportsThem()
    {
        // 8 layers of 4 × 40 + 32 × 3 + 10 = 266; 2,628 in all. Default range: [1, 7) (skip round(8·4/32) = 1 and round(8·2/32) = 1).
        var model = new FakeWidthModel(8);
        var metric = ByUnit();
        var pipeline = new WidthPipelineBuilder().Configure(o => o.Target = PruningTarget.Ratio(0.1)).UseMetric(metric).Build();

        var report = await pipeline.RunAsync(model, Samples);

        metric.LastRequest!.Layers.Should().Equal(1, 2, 3, 4, 5, 6);
        metric.LastRequest.Units.Should().Be(WidthUnits.Both);
        var plan = model.Plans.Should().ContainSingle().Subject;
        plan.Heads.Keys.Concat(plan.Channels.Keys).Should().OnlyContain(l => l >= 1 && l <= 6);
        double budget = 0.1 * 2_628;
        long removed = report.OriginalParameterCount - report.FinalParameterCount;
        removed.Should().BeLessThanOrEqualTo((long)budget).And.BeGreaterThan((long)budget - 6 * 3);
        report.Settings.Mode.Should().Be(PruningMode.Width);
        report.Settings.Metric.Should().Be("by-unit");
        report.Settings.Strategy.Should().Be(WidthConstants.UniformStrategyName);
        report.StopReason.Should().Be(PruningStopReason.TargetReached);
        report.FinalLayerCount.Should().Be(8);
        report.RemovedOriginalLayers.Should().BeEmpty();

        var round = report.Rounds.Should().ContainSingle().Subject;
        round.Width!.LayerStart.Should().Be(1);
        round.Width.LayerEnd.Should().Be(7);
        round.Width.Layers.Should().HaveCount(8);
        round.Width.Layers[0].InRange.Should().BeFalse();
        round.Width.Layers[0].HeadScores.Should().BeNull();
        var layer3 = round.Width.Layers[3];
        layer3.RemovedChannels.Should().Equal(plan.Channels[3]);
        layer3.ChannelsAfter.Should().Be(32 - plan.Channels[3].Count);
        layer3.ChannelScores.Should().HaveCount(32);
        layer3.RemovedChannels.Should().Equal(Enumerable.Range(32 - layer3.RemovedChannels.Count, layer3.RemovedChannels.Count), "channel scores fall with the index");
        layer3.ParameterCountBefore.Should().Be(266);
        layer3.ParameterCountAfter.Should().Be(model.GetLayerParameterCount(3));
    }

    [Fact]
    public async Task RunAsync_ReportJson_RoundTrips()
    {
        var pipeline = new WidthPipelineBuilder().ConfigureWidth(o => { o.Units = WidthUnits.Heads; o.LayerStart = 0; o.LayerEnd = 3; }).UseMetric(ByUnit()).Build();

        var report = await pipeline.RunAsync(new FakeWidthModel(4), Samples);
        var json = PruningReportJson.Serialize(report);
        var back = PruningReportJson.Deserialize(json);

        json.Should().Contain("\"mode\": \"width\"").And.Contain("\"units\": \"heads\"");
        back.FormatVersion.Should().Be(2);
        back.Settings.Mode.Should().Be(PruningMode.Width);
        back.Settings.Options.Should().ContainKey("width.Units").WhoseValue.Should().Be("Heads");
        var width = back.Rounds[0].Width!;
        width.Units.Should().Be(WidthUnits.Heads);
        width.Layers.Select(l => l.RemovedHeads).Should().BeEquivalentTo(report.Rounds[0].Width!.Layers.Select(l => l.RemovedHeads), o => o.WithStrictOrdering());
        width.Layers.Select(l => l.HeadScores).Should().BeEquivalentTo(report.Rounds[0].Width!.Layers.Select(l => l.HeadScores), o => o.WithStrictOrdering());
        back.FinalParameterCount.Should().Be(report.FinalParameterCount);
    }

    [Fact]
    public void Deserialize_DepthReportOfFormatOne_ReadsAsDepth()
    {
        var depth = new PruningReport
        {
            FormatVersion = 1,
            Architecture = "X",
            Settings = new PruningSettings { Metric = "m", Strategy = "s", Filters = [], Target = PruningTarget.Ratio(0.2), Seed = 1, PerturbationSets = 0, Norm = "L2" },
            StartedAt = DateTimeOffset.UnixEpoch,
            OriginalLayerCount = 2,
            OriginalParameterCount = 10,
            FinalLayerCount = 2,
            FinalParameterCount = 10,
            RemovedOriginalLayers = [],
            RemainingOriginalLayers = [0, 1],
            Samples = [],
            Rounds = [],
            StopReason = PruningStopReason.TargetReached,
            TargetReached = true,
        };
        var json = PruningReportJson.Serialize(depth).Replace("\"mode\": \"depth\",", "", StringComparison.Ordinal);

        PruningReportJson.Deserialize(json).Settings.Mode.Should().Be(PruningMode.Depth);
    }

    [Fact]
    public void Build_InvalidOptions_ListsEveryProblem()
    {
        var builder = new WidthPipelineBuilder()
            .Configure(o => { o.Target = PruningTarget.LayerCount(2); o.Norm = "L7"; })
            .ConfigureWidth(o => { o.LayerStart = 5; o.LayerEnd = 3; o.Units = (WidthUnits)8; });

        var e = FluentActions.Invoking(builder.Build).Should().Throw<OptionsValidationException>().Which;

        e.Failures.Should().Contain(f => f.Contains("needs a parameter ratio", StringComparison.Ordinal));
        e.Failures.Should().Contain(f => f.Contains("LayerEnd", StringComparison.Ordinal));
        e.Failures.Should().Contain(f => f.Contains("Units", StringComparison.Ordinal));
        e.Failures.Should().Contain(f => f.Contains("L7", StringComparison.Ordinal));
        e.Failures.Should().Contain(f => f.Contains("No width importance metric", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunAsync_RangeOutsideTheModel_ThrowsBeforeScoring()
    {
        var metric = ByUnit();
        var pipeline = new WidthPipelineBuilder().ConfigureWidth(o => { o.LayerStart = 10; o.LayerEnd = 12; }).UseMetric(metric).Build();

        await FluentActions.Awaiting(() => pipeline.RunAsync(new FakeWidthModel(4), Samples)).Should().ThrowAsync<ArgumentException>().WithMessage("*holds no layer*");
        metric.LastRequest.Should().BeNull();
    }

    [Fact]
    public async Task RunAsync_BiasCompensationTheModelCannotCarry_ThrowsBeforeScoring()
    {
        var metric = ByUnit();
        var model = new FakeWidthModel(4) { Obstacle = "no bias flag" };
        var pipeline = new WidthPipelineBuilder().ConfigureWidth(o => o.BiasCompensation = true).UseMetric(metric).Build();

        await FluentActions.Awaiting(() => pipeline.RunAsync(model, Samples)).Should().ThrowAsync<ArgumentException>().WithMessage("*no bias flag*");
        metric.LastRequest.Should().BeNull();
        model.Plans.Should().BeEmpty();
    }

    [Fact]
    public async Task RunAsync_BiasCompensationWithoutMeans_ThrowsNamingTheMetricAndChangesNothing()
    {
        // The fake metric gives head means only.
        var model = new FakeWidthModel(4);
        var pipeline = new WidthPipelineBuilder().ConfigureWidth(o => o.BiasCompensation = true).UseMetric(ByUnit()).Build();

        await FluentActions.Awaiting(() => pipeline.RunAsync(model, Samples)).Should().ThrowAsync<InvalidOperationException>().WithMessage("*down_proj*by-unit*");
        model.Plans.Should().BeEmpty();
    }

    [Fact]
    public async Task RunAsync_BiasCompensationForHeads_PassesTheMeansOfThePrunedLayers()
    {
        var model = new FakeWidthModel(4);
        var pipeline = new WidthPipelineBuilder().ConfigureWidth(o => { o.BiasCompensation = true; o.Units = WidthUnits.Heads; o.LayerStart = 0; o.LayerEnd = 4; })
            .Configure(o => o.Target = PruningTarget.Ratio(0.2)).UseMetric(ByUnit()).Build();

        await pipeline.RunAsync(model, Samples);

        var plan = model.Plans.Should().ContainSingle().Subject;
        plan.HeadInputMeans!.Keys.Should().BeEquivalentTo(plan.Heads.Keys);
        plan.ChannelInputMeans.Should().BeNull();
    }

    [Fact]
    public async Task RunAsync_RandomMetric_IsReproducibleForASeed()
    {
        async Task<IReadOnlyList<IReadOnlyList<int>>> Run(int seed)
        {
            var model = new FakeWidthModel(6);
            var report = await new WidthPipelineBuilder().Configure(o => o.Seed = seed).ConfigureWidth(o => o.Allocation = WidthAllocation.Adaptive).UseRandomMetric().Build().RunAsync(model, Samples);
            return [.. report.Rounds[0].Width!.Layers.Select(l => l.RemovedChannels)];
        }

        var a = await Run(1);
        (await Run(1)).Should().BeEquivalentTo(a, o => o.WithStrictOrdering());
        (await Run(2)).Should().NotBeEquivalentTo(a, o => o.WithStrictOrdering());
    }

    [Fact]
    public async Task AddWidthMetric_UserMetric_IsFoundByNameAndRunsThroughTheFactory()
    {
        var services = new ServiceCollection();
        services.AddPip(o => { o.WidthMetric = "by-unit"; o.Width.Units = WidthUnits.Channels; }).AddWidthMetric(ByUnit());
        using var provider = services.BuildServiceProvider();

        provider.GetRequiredService<IWidthImportanceMetricProvider>().Names.Should().Contain(["by-unit", "random"]);
        var pipeline = provider.GetRequiredService<IWidthPruningPipelineFactory>().Create();
        var report = await pipeline.RunAsync(new FakeWidthModel(8), Samples);

        pipeline.Metric.Name.Should().Be("by-unit");
        report.Settings.Metric.Should().Be("by-unit");
        report.Rounds[0].Width!.Units.Should().Be(WidthUnits.Channels);
        report.Rounds[0].Width!.Layers.Should().OnlyContain(l => l.RemovedHeads.Count == 0);
        FluentActions.Invoking(() => provider.GetRequiredService<IWidthPruningPipelineFactory>().Create("nope"))
            .Should().Throw<KeyNotFoundException>().WithMessage("*by-unit*");
    }
}
