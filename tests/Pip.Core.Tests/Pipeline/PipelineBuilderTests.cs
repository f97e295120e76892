using Microsoft.Extensions.Options;

namespace Pip.Tests.Pipeline;

public class PipelineBuilderTests
{
    private static readonly FixedMetric Metric = new("fixed", [1, 2, 3, 4]);

    [Fact]
    public void Build_ManyInvalidOptions_ThrowsOneExceptionListingEveryError()
    {
        PipelineBuilder builder = new PipelineBuilder()
            .Configure(o =>
            {
                o.Target = PruningTarget.Ratio(1.5);
                o.Calibration.SampleCount = 0;
                o.Norm = "L3";
                o.PerturbationSets = 1;
            })
            .AddConsistencyDiscriminator()
            .UseLexiconPerturber(new LexiconPerturberOptions { Rate = 2 });

        Action act = () => builder.Build();

        OptionsValidationException e = act.Should().Throw<OptionsValidationException>().Which;
        e.Failures.Should().HaveCount(6);
        e.Failures.Should().Contain(f => f.Contains("ratio must be in (0, 1)") && f.Contains("1.5"));
        e.Failures.Should().Contain(f => f.Contains("Calibration.SampleCount"));
        e.Failures.Should().Contain(f => f.Contains("unknown norm 'L3'") && f.Contains("L1, L2, Linf"));
        e.Failures.Should().Contain(f => f.Contains("consistency discriminator") && f.Contains("at least 2"));
        e.Failures.Should().Contain(f => f.Contains("LexiconPerturberOptions.Rate"));
        e.Failures.Should().Contain(f => f.Contains("No importance metric"));
        e.Message.Should().Contain("L3").And.Contain("No importance metric");
    }

    [Fact]
    public void Build_ZeroLayerTarget_IsAnError()
    {
        Action act = () => new PipelineBuilder().UseMetric(Metric).Configure(o => o.Target = PruningTarget.LayerCount(0)).Build();

        act.Should().Throw<OptionsValidationException>().Which.Failures.Should().ContainSingle().Which.Should().Contain("layer count must be at least 1");
    }

    [Fact]
    public void Build_InvalidFilterAndStrategyOptions_AreListed()
    {
        Action act = () => new PipelineBuilder()
            .UseMetric(Metric)
            .UseIterativeGreedy(new IterativeGreedyStrategyOptions { LayersPerRound = 0 })
            .AddLayerGuard(-1, 0)
            .AddConsistencyDiscriminator(new ConsistencyDiscriminatorOptions { Threshold = 0 })
            .Build();

        act.Should().Throw<OptionsValidationException>().Which.Failures.Should().HaveCount(3);
    }

    [Fact]
    public void Build_Twice_Throws()
    {
        PipelineBuilder builder = new PipelineBuilder().UseMetric(Metric);
        builder.Build();

        Action act = () => builder.Build();

        act.Should().Throw<InvalidOperationException>();
    }

    [Fact]
    public void Build_Defaults_IterativeStrategyLexiconPerturberForPerturbationMetrics()
    {
        PruningPipeline pipeline = new PipelineBuilder().UseMetric(new FixedMetric("p", [1.0], usesPerturbations: true)).Build();

        pipeline.Strategy.Name.Should().Be("iterative");
        pipeline.Settings.Perturber.Should().Be("lexicon");
        pipeline.Settings.PerturbationSets.Should().Be(3);
        pipeline.Settings.Target.Should().Be(PruningTarget.Ratio(0.2));
        pipeline.Settings.Seed.Should().Be(42);
        pipeline.Settings.Norm.Should().Be("L2");
        pipeline.Settings.Options.Should().ContainKey("perturber.Rate");
    }

    [Fact]
    public void Build_OptionsChangedAfterBuild_DoNotAffectPipeline()
    {
        var options = new PipelineOptions { Seed = 7, Norm = "inf" };
        var guard = new LayerGuardOptions { First = 1 };
        PruningPipeline pipeline = new PipelineBuilder().UseMetric(Metric).Configure(options).AddLayerGuard(guard).Build();

        options.Seed = 8;
        options.Target = PruningTarget.LayerCount(1);
        guard.First = 3;

        pipeline.Settings.Seed.Should().Be(7);
        pipeline.Settings.Norm.Should().Be("Linf");
        pipeline.Settings.Options.Should().Contain("filter[0]:guard.First", "1");
        var model = new FakeModel(4);
        pipeline.Filters[0].Filter(model, new LayerScores([0, 0, 0, 0]), [0, 1, 2, 3]).Kept.Should().Equal(1, 2, 3);
    }

    [Fact]
    public void Build_ComponentOptions_AreRecordedInSettings()
    {
        PruningPipeline pipeline = new PipelineBuilder()
            .UseMetric(new FixedMetric("p", [1.0], usesPerturbations: true))
            .UseRandomCharPerturber(new RandomCharPerturberOptions { Rate = 0.25, Kinds = [PerturbationKind.Swap, PerturbationKind.Insert] })
            .UseIterativeGreedy(new IterativeGreedyStrategyOptions { LayersPerRound = 2 })
            .AddConsistencyDiscriminator(new ConsistencyDiscriminatorOptions { Threshold = 0.3 })
            .Build();

        pipeline.Settings.Options.Should().Contain("perturber.Rate", "0.25")
            .And.Contain("perturber.Kinds", "Swap,Insert")
            .And.Contain("strategy.LayersPerRound", "2")
            .And.Contain("filter[0]:consistency.Threshold", "0.3");
        pipeline.Settings.Filters.Should().Equal("consistency");
    }
}
