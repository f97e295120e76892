using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Pip.Tests.DependencyInjection;

public class AddPipTests
{
    private static readonly double[] Importance = [5, 3, 8, 1, 9, 2, 7, 4, 6, 10];

    [Fact]
    public async Task AddMetric_CustomInstance_DrivesPruneOfFakeModel()
    {
        var services = new ServiceCollection();
        services.AddPip(o =>
        {
            o.Metric = "my-metric";
            o.Target = PruningTarget.LayerCount(2);
        }).AddMetric(new FixedMetric("my-metric", Importance));
        using ServiceProvider provider = services.BuildServiceProvider();

        PruningPipeline pipeline = provider.GetRequiredService<IPruningPipelineFactory>().Create();
        var model = new FakeModel(10, 100, 1000);
        PruningReport report = await pipeline.RunAsync(model, Texts.Samples(1));

        report.RemovedOriginalLayers.Should().Equal(3, 5);
        report.Settings.Metric.Should().Be("my-metric");
        report.Settings.Filters.Should().BeEmpty("the metric uses no perturbations, so the discriminator is not added");
    }

    [Fact]
    public async Task AddMetric_CustomType_WithPerturbations_GetsDiscriminatorGuardAndStrategyFromOptions()
    {
        var services = new ServiceCollection();
        services.AddPip(o =>
        {
            o.Metric = LowIndexFirstMetric.MetricName;
            o.Strategy = "one-shot";
            o.Perturber = "random-char";
            o.Guard.First = 1;
            o.Target = PruningTarget.LayerCount(2);
        }).AddMetric<LowIndexFirstMetric>();
        using ServiceProvider provider = services.BuildServiceProvider();

        PruningPipeline pipeline = provider.GetRequiredService<IPruningPipelineFactory>().Create();
        PruningReport report = await pipeline.RunAsync(new FakeModel(6), Texts.Samples(1));

        report.RemovedOriginalLayers.Should().Equal(1, 2);
        report.Settings.Filters.Should().Equal("guard", "consistency");
        report.Settings.Strategy.Should().Be("one-shot");
        report.Settings.Perturber.Should().Be("random-char");
    }

    [Fact]
    public async Task Create_MetricNameArgument_OverridesOptions()
    {
        var services = new ServiceCollection();
        services.AddPip(o => o.Target = PruningTarget.LayerCount(1));
        using ServiceProvider provider = services.BuildServiceProvider();

        PruningPipeline pipeline = provider.GetRequiredService<IPruningPipelineFactory>().Create("perplexity-drop");
        PruningReport report = await pipeline.RunAsync(new FakeModel(4, importance: [3, 1, 2, 4]), Texts.Samples(1));

        report.RemovedOriginalLayers.Should().Equal(1);
    }

    [Fact]
    public void GetMetric_UnknownName_ThrowsListingRegisteredNames()
    {
        var services = new ServiceCollection();
        services.AddPip().AddMetric(new FixedMetric("mine", [1.0]));
        using ServiceProvider provider = services.BuildServiceProvider();

        Action act = () => provider.GetRequiredService<IImportanceMetricProvider>().GetMetric("pip");

        act.Should().Throw<KeyNotFoundException>().WithMessage("*'pip'*mine, perplexity-drop, random*");
        provider.GetRequiredService<IImportanceMetricProvider>().GetMetric("RANDOM").Name.Should().Be("random");
    }

    [Fact]
    public void Create_DefaultMetricNotRegistered_ThrowsListingNames()
    {
        var services = new ServiceCollection();
        services.AddPip();
        using ServiceProvider provider = services.BuildServiceProvider();

        Action act = () => provider.GetRequiredService<IPruningPipelineFactory>().Create();

        act.Should().Throw<KeyNotFoundException>().WithMessage("*'pip'*perplexity-drop, random*");
    }

    [Fact]
    public void Create_UnknownStrategyOrPerturber_ThrowsListingAvailable()
    {
        var services = new ServiceCollection();
        services.AddPip(o => { o.Metric = "p"; o.Perturber = "nope"; }).AddMetric(new FixedMetric("p", [1.0], usesPerturbations: true));
        using ServiceProvider provider = services.BuildServiceProvider();

        Action act = () => provider.GetRequiredService<IPruningPipelineFactory>().Create();

        act.Should().Throw<InvalidOperationException>().WithMessage("*'nope'*lexicon, random-char*");
    }

    [Fact]
    public void AddPip_InvalidOptions_FactoryThrowsOneExceptionListingAnnotationAndCrossFieldErrors()
    {
        var services = new ServiceCollection();
        services.AddPip(o =>
        {
            o.Norm = "L7";
            o.PerturbationSets = 1;
            o.Lexicon.Rate = 0;
            o.Calibration.SampleCount = 0;
            o.Target = PruningTarget.Ratio(0);
        });
        using ServiceProvider provider = services.BuildServiceProvider();

        Action act = () => provider.GetRequiredService<IPruningPipelineFactory>();

        OptionsValidationException e = act.Should().Throw<OptionsValidationException>().Which;
        e.Failures.Should().Contain(f => f.Contains("L7"))
            .And.Contain(f => f.Contains("at least 2"))
            .And.Contain(f => f.Contains("PipOptions.Lexicon") && f.Contains("Rate"))
            .And.Contain(f => f.Contains("PipOptions.Calibration") && f.Contains("SampleCount"))
            .And.Contain(f => f.Contains("ratio must be in (0, 1)"));
    }

    [Fact]
    public void AddPip_InvalidOptions_StartupValidatorThrows()
    {
        var services = new ServiceCollection();
        services.AddPip(o => o.Norm = "L7");
        using ServiceProvider provider = services.BuildServiceProvider();

        Action act = () => provider.GetRequiredService<IStartupValidator>().Validate();

        act.Should().Throw<OptionsValidationException>().WithMessage("*L7*");
    }

    [Fact]
    public void AddPip_CalledTwice_RegistersBuiltInsOnce()
    {
        var services = new ServiceCollection();
        services.AddPip();
        services.AddPip().AddMetric<LowIndexFirstMetric>().AddMetric<LowIndexFirstMetric>();
        using ServiceProvider provider = services.BuildServiceProvider();

        provider.GetServices<IImportanceMetric>().Select(m => m.Name).Should().BeEquivalentTo(["random", "perplexity-drop", LowIndexFirstMetric.MetricName]);
    }

    [Fact]
    public async Task AddPerturberAndStrategy_CustomTypes_AreSelectedByName()
    {
        var services = new ServiceCollection();
        services.AddPip(o =>
        {
            o.Metric = "p";
            o.Perturber = UpperCasePerturber.PerturberName;
            o.Strategy = "remove-one";
            o.UseConsistencyDiscriminator = false;
        })
        .AddMetric(new FixedMetric("p", Importance, usesPerturbations: true))
        .AddPerturber<UpperCasePerturber>()
        .AddStrategy<RemoveOneStrategy>();
        using ServiceProvider provider = services.BuildServiceProvider();

        PruningReport report = await provider.GetRequiredService<IPruningPipelineFactory>().Create().RunAsync(new FakeModel(10), Texts.Samples(1));

        report.Settings.Perturber.Should().Be(UpperCasePerturber.PerturberName);
        report.Rounds.Should().ContainSingle().Which.PerturbationSets[0][0].Text.Should().Be(Texts.Samples(1)[0].Text.ToUpperInvariant());
        report.RemovedOriginalLayers.Should().Equal(3);
    }

    private sealed class LowIndexFirstMetric : IImportanceMetric
    {
        public const string MetricName = "low-index-first";

        public string Name => MetricName;

        public bool UsesPerturbations => true;

        public ValueTask<LayerScores> ScoreAsync(ImportanceRequest request, CancellationToken cancellationToken = default)
        {
            double[] scores = [.. request.Model.OriginalLayerIndices.Select(o => (double)o)];
            IReadOnlyList<IReadOnlyList<double>> perSet = [.. request.PerturbationSets.Select(_ => (IReadOnlyList<double>)scores)];
            return ValueTask.FromResult(new LayerScores(scores, perSet));
        }
    }

    private sealed class UpperCasePerturber : IPerturber
    {
        public const string PerturberName = "upper";

        public string Name => PerturberName;

        public ValueTask<PerturbedSample> PerturbAsync(CalibrationSample sample, int seed, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(new PerturbedSample(sample, sample.Text.ToUpperInvariant(), []));
    }

    private sealed class RemoveOneStrategy : IPruningStrategy
    {
        public string Name => "remove-one";

        public PruningDecision Decide(PruningState state) => new(TargetPlanner.SelectLayers(state, 1), false);
    }
}
