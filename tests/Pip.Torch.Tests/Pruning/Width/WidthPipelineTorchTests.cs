using Microsoft.Extensions.DependencyInjection;
using Pip.Checkpoints;
using Pip.Torch.Pruning.Width;
using Pip.Torch.Tests.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Pruning.Width;

public sealed class WidthPipelineTorchTests
{
    private static readonly int[] Tokens = TinyModels.RandomTokens(9, 21);

    [Fact]
    public async Task RunAsync_TaylorUniformAllLayers_HitsTheRatioAndKeepsGqaShapesConsistentWithTheConfig()
    {
        using var model = WidthReference.Model(seed: 21);
        var pipeline = new WidthPipelineBuilder()
            .Configure(o => o.Target = PruningTarget.Ratio(0.2))
            .ConfigureWidth(o => { o.LayerStart = 0; o.LayerEnd = 3; })
            .UseWidthMetric("taylor", new WidthMetricOptions { GroupReduction = WidthGroupReduction.Sum })
            .Build();
        long before = model.ParameterCount;

        var report = await pipeline.RunAsync(model, PruningFixtures.Samples);

        // Budget 0.2 × before; the shortfall is less than one channel (3 × 32 parameters) per layer.
        double budget = 0.2 * before;
        long removed = before - model.ParameterCount;
        removed.Should().BeLessThanOrEqualTo((long)budget);
        (budget - removed).Should().BeLessThan(3 * 3 * 32);
        report.FinalParameterCount.Should().Be(model.ParameterCount);
        report.StopReason.Should().Be(PruningStopReason.TargetReached);

        var config = model.Config;
        config.IsHeterogeneous.Should().BeFalse("every layer was pruned alike: a standard checkpoint");
        for (int l = 0; l < model.LayerCount; l++)
        {
            var a = model.Module.Layers[l].SelfAttn;
            var shape = config.ShapeOf(l);
            a.QProj.weight!.shape.Should().Equal(shape.NumAttentionHeads * 8, 32);
            a.KProj.weight!.shape.Should().Equal(shape.NumKeyValueHeads * 8, 32);
            a.VProj.weight!.shape.Should().Equal(shape.NumKeyValueHeads * 8, 32);
            a.OProj.weight!.shape.Should().Equal(32, shape.NumAttentionHeads * 8);
            (shape.NumAttentionHeads / shape.NumKeyValueHeads).Should().Be(2, "pruning by key/value group keeps G");
            model.Module.Layers[l].Mlp.DownProj.weight!.shape.Should().Equal(32, shape.IntermediateSize);
            var record = report.Rounds[0].Width!.Layers[l];
            (record.HeadsAfter, record.ChannelsAfter).Should().Be((shape.NumKeyValueHeads, shape.IntermediateSize));
        }
    }

    [Fact]
    public async Task RunAsync_LayerRange_PrunesOnlyThoseLayersAndSavesAHeterogeneousCheckpointThatReloadsWithTheSameLogits()
    {
        using var model = WidthReference.Model(seed: 22, layers: 4);
        var pipeline = new WidthPipelineBuilder()
            .Configure(o => o.Target = PruningTarget.Ratio(0.15))
            .ConfigureWidth(o => { o.LayerStart = 1; o.LayerEnd = 3; })
            .UseWidthMetric("wanda-sp")
            .Build();

        var report = await pipeline.RunAsync(model, PruningFixtures.Samples);

        model.Config.IsHeterogeneous.Should().BeTrue();
        model.Config.ShapeOf(0).Should().Be(new LayerShape(6, 3, 48));
        model.Config.ShapeOf(3).Should().Be(new LayerShape(6, 3, 48));
        model.Config.ShapeOf(1).Should().Be(model.Config.ShapeOf(2));
        model.Config.ShapeOf(1).IntermediateSize.Should().BeLessThan(48);
        report.Rounds[0].Width!.Layers.Where(l => !l.InRange).Select(l => l.OriginalLayer).Should().Equal(0, 3);
        await ShouldReloadWithSameLogits(model);
    }

    [Fact]
    public async Task RunAsync_FlapAdaptiveWithBiasCompensation_AddsTheMeanContributionAsBiasAndReloads()
    {
        using var model = WidthReference.Model(seed: 23);
        var inputs = WidthReference.ProjectionInputs(model.Module, WidthReference.Sequences(model));
        // Before pruning: each layer's o_proj and down_proj weights and the means of their inputs.
        var before = model.Module.Layers.Select(layer => new[] { layer.SelfAttn.OProj, layer.Mlp.DownProj }.Select(p =>
        {
            var x = inputs[p.weight!.Handle];
            return (W: WidthReference.ToArray(p.weight!), Mean: Enumerable.Range(0, x[0].Length).Select(j => x.Average(row => row[j])).ToArray());
        }).ToArray()).ToArray();
        var pipeline = new WidthPipelineBuilder()
            .Configure(o => o.Target = PruningTarget.Ratio(0.2))
            .ConfigureWidth(o => { o.LayerStart = 0; o.LayerEnd = 3; o.Allocation = WidthAllocation.Adaptive; o.BiasCompensation = true; })
            .UseWidthMetric("flap")
            .Build();

        var report = await pipeline.RunAsync(model, PruningFixtures.Samples);

        model.Config.AttentionBias.Should().BeTrue();
        model.Config.MlpBias.Should().BeTrue();
        report.Settings.Strategy.Should().Be("width-adaptive");
        report.Rounds[0].Width!.BiasCompensation.Should().BeTrue();
        int compensated = 0;
        for (int l = 0; l < 3; l++)
        {
            var record = report.Rounds[0].Width!.Layers[l];
            foreach (var (removedUnits, width, source, bias) in new[]
            {
                (record.RemovedHeads, 16, before[l][0], model.Module.Layers[l].SelfAttn.OProj.bias!),
                (record.RemovedChannels, 1, before[l][1], model.Module.Layers[l].Mlp.DownProj.bias!),
            })
            {
                var columns = removedUnits.SelectMany(u => Enumerable.Range(u * width, width)).ToArray();
                var expected = Enumerable.Range(0, 32).Select(i => columns.Sum(j => source.W[i, j] * source.Mean[j])).ToArray();
                using var actual = bias.detach().to_type(ScalarType.Float64);
                actual.data<double>().ToArray().ShouldMatch(expected, 1e-4, $"(bias of layer {l})");
                compensated += columns.Length;
            }

            model.Module.Layers[l].SelfAttn.QProj.bias.Should().NotBeNull("attention_bias applies to q/k/v too");
            using var qBias = model.Module.Layers[l].SelfAttn.QProj.bias!.abs().max();
            qBias.item<float>().Should().Be(0);
        }

        compensated.Should().BeGreaterThan(0);
        report.FinalParameterCount.Should().Be(model.ParameterCount, "the report counts the added biases");
        await ShouldReloadWithSameLogits(model);
    }

    [Fact]
    public async Task RunAsync_BiasCompensationOnQwen2_ThrowsBeforeChangingTheModel()
    {
        using var model = WidthReference.Model(seed: 24, family: DecoderFamily.Qwen2);
        var snapshot = PruningFixtures.Snapshot(model.Module);
        var pipeline = new WidthPipelineBuilder().ConfigureWidth(o => o.BiasCompensation = true).UseWidthMetric("flap").Build();

        await FluentActions.Awaiting(() => pipeline.RunAsync(model, PruningFixtures.Samples)).Should().ThrowAsync<ArgumentException>().WithMessage("*Qwen2ForCausalLM*o_proj*");
        model.Module.ShouldEqual(snapshot);
    }

    [Fact]
    public async Task AddTorchWidthMetrics_UserMetricByName_RunsOnATorchModel()
    {
        var services = new ServiceCollection();
        services.AddPip(o => { o.Width.LayerStart = 0; o.Width.Units = WidthUnits.Channels; o.Target = PruningTarget.Ratio(0.1); })
            .AddTorchWidthMetrics(o => o.MaxTokens = 16)
            .AddWidthMetric(new LastChannelsFirst());
        using var provider = services.BuildServiceProvider();
        var metrics = provider.GetRequiredService<IWidthImportanceMetricProvider>();
        using var model = WidthReference.Model(seed: 25);

        metrics.Names.Should().Contain([.. TorchWidthMetrics.AllNames, "last-channels-first"]);
        var report = await provider.GetRequiredService<IWidthPruningPipelineFactory>().Create("last-channels-first").RunAsync(model, PruningFixtures.Samples);

        report.Settings.Metric.Should().Be("last-channels-first");
        var layers = report.Rounds[0].Width!.Layers.Where(l => l.RemovedChannels.Count > 0).ToArray();
        layers.Should().NotBeEmpty();
        layers.Should().OnlyContain(l => l.RemovedChannels.SequenceEqual(Enumerable.Range(48 - l.RemovedChannels.Count, l.RemovedChannels.Count)));
    }

    /// <summary>A user's metric: the higher the channel index, the less important.</summary>
    private sealed class LastChannelsFirst : IWidthImportanceMetric
    {
        public string Name => "last-channels-first";

        public ValueTask<WidthScores> ScoreAsync(WidthImportanceRequest request, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(new WidthScores(null,
                [.. Enumerable.Range(0, request.Model.LayerCount).Select(l => (IReadOnlyList<double>)[.. Enumerable.Range(0, request.Model.GetUnitCount(l, WidthUnitKind.Channels)).Select(c => (double)-c)])]));
    }

    private static async Task ShouldReloadWithSameLogits(TorchCausalLM model)
    {
        var folder = Path.Combine(Path.GetTempPath(), "pip-width-" + Guid.NewGuid().ToString("N"));
        try
        {
            model.Save(folder);
            using var reloaded = TorchCausalLM.Load(folder);
            reloaded.Config.LayerShapes.Should().BeEquivalentTo(model.Config.LayerShapes);
            reloaded.Config.AttentionBias.Should().Be(model.Config.AttentionBias);
            reloaded.Config.MlpBias.Should().Be(model.Config.MlpBias);
            reloaded.ParameterCount.Should().Be(model.ParameterCount);
            using var scope = NewDisposeScope();
            TinyModels.MaxAbsDiff(WidthFixtures.Logits(reloaded.Module, Tokens), WidthFixtures.Logits(model.Module, Tokens)).Should().Be(0);
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }

        await Task.CompletedTask;
    }
}
