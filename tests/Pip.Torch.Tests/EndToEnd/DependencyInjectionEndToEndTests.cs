using Microsoft.Extensions.DependencyInjection;
using Pip.Torch.Pruning;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.EndToEnd;

/// <summary>
/// A user's own metric registered like a built-in one (<c>AddMetric&lt;T&gt;()</c> next to <c>AddTorchMetrics()</c>)
/// drives a real pruning of a TorchCausalLM through <see cref="IPruningPipelineFactory"/>.
/// </summary>
public sealed class DependencyInjectionEndToEndTests
{
    [Fact]
    public async Task PipelineFactory_CustomMetricRegisteredWithAddMetric_RemovesTheLayerItScoresLowest()
    {
        using var checkpoint = EndToEndCheckpoint.Create(layers: 4, seed: 21);
        using var model = TorchCausalLM.Load(checkpoint.ModelFolder);
        // Make layer 2 the weakest by the custom metric's measure (and by no built-in one in particular).
        using (no_grad()) model.Module.Layers[2].Mlp.DownProj.weight!.mul_(0.05);
        var expectedScores = Enumerable.Range(0, 4).Select(l =>
        {
            using var w = model.Module.NamedWeights()[$"model.layers.{l}.mlp.down_proj.weight"].detach().to_type(ScalarType.Float64);
            return Math.Sqrt(w.pow(2).sum().item<double>());
        }).ToArray();
        Array.IndexOf(expectedScores, expectedScores.Min()).Should().Be(2);

        var services = new ServiceCollection();
        services.AddPip(o =>
            {
                o.Metric = DownProjectionNormMetric.MetricName;
                o.Target = PruningTarget.LayerCount(1);
            })
            .AddTorchMetrics()
            .AddMetric<DownProjectionNormMetric>();
        using var provider = services.BuildServiceProvider();
        provider.GetRequiredService<IImportanceMetricProvider>().Names.Should()
            .Contain([DownProjectionNormMetric.MetricName, TorchMetricConstants.PertImport, TorchMetricConstants.BlockInfluence, TorchMetricConstants.Taylor]);
        var factory = provider.GetRequiredService<IPruningPipelineFactory>();
        factory.Create(TorchMetricConstants.BlockInfluence).Metric.Name.Should().Be(TorchMetricConstants.BlockInfluence);

        var pipeline = factory.Create();
        var report = await pipeline.RunAsync(model, CalibrationSet.FromTexts(EndToEndCheckpoint.Texts));

        pipeline.Metric.Should().BeOfType<DownProjectionNormMetric>();
        report.Settings.Metric.Should().Be(DownProjectionNormMetric.MetricName);
        report.Settings.Filters.Should().BeEmpty("the discriminator is added only for metrics that use perturbations");
        report.Rounds.Should().ContainSingle();
        report.Rounds[0].Scores.Should().Equal(expectedScores, (a, e) => Math.Abs(a - e) <= 1e-9 * e);
        report.RemovedOriginalLayers.Should().Equal(2);
        model.LayerCount.Should().Be(3);
        model.OriginalLayerIndices.Should().Equal(0, 1, 3);
        model.Config.NumHiddenLayers.Should().Be(3);
    }

    /// <summary>A user's metric: the Frobenius norm of each layer's MLP down projection.</summary>
    private sealed class DownProjectionNormMetric : IImportanceMetric
    {
        public const string MetricName = "down-proj-norm";

        public string Name => MetricName;

        public bool UsesPerturbations => false;

        public ValueTask<LayerScores> ScoreAsync(ImportanceRequest request, CancellationToken cancellationToken = default)
        {
            var model = (TorchCausalLM)request.Model;
            using var noGrad = no_grad();
            var scores = model.Module.Layers.Select(layer =>
            {
                using var w = layer.Mlp.DownProj.weight!.detach().to_type(ScalarType.Float64);
                return w.norm().item<double>();
            }).ToArray();
            return ValueTask.FromResult(new LayerScores(scores));
        }
    }
}
