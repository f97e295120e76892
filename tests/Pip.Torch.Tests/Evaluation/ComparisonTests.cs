using Pip.Evaluation;
using Pip.Torch.Evaluation;
using Pip.Torch.Pruning;

namespace Pip.Torch.Tests.Evaluation;

public sealed class ComparisonTests(ComparisonFixture fixture) : IClassFixture<ComparisonFixture>
{
    private const int Window = 16;

    private ComparisonOptions Options(params ComparisonMethod[] methods) => new()
    {
        Methods = methods,
        Ratios = [0.3],
        PerturbationSets = 2,
        PerplexityDatasets =
        [
            new PerplexityDatasetFile(PerplexityDatasets.WikiText2Name, fixture.WikiTextFile),
            new PerplexityDatasetFile(PerplexityDatasets.PtbName, fixture.PtbFile),
        ],
        Tasks = [new ZeroShotTaskFile(ZeroShotTaskKind.BoolQ, fixture.BoolQFile)],
        Windowing = new CorpusWindowing { Window = Window },
    };

    /// <summary>The same pruning built directly with the public builder API (not through the comparison).</summary>
    private static PruningPipeline DirectPipeline(string metric, bool iterative, bool discriminator)
    {
        var builder = new PipelineBuilder()
            .Configure(new PipelineOptions { Target = PruningTarget.Ratio(0.3), Seed = 42, PerturbationSets = 2, Norm = "L2" })
            .UseMetric(metric, new TorchMetricOptions());
        if (iterative) builder.UseIterativeGreedy();
        else builder.UseOneShot();
        if (metric == "pip") builder.UseLexiconPerturber();
        if (discriminator) builder.AddConsistencyDiscriminator();
        return builder.Build();
    }

    private (double Wiki, double Ptb, double BoolQ) EvaluateDirectly(TorchCausalLM model)
    {
        var wikiTokens = model.Tokenizer!.Encode(PerplexityDatasets.LoadWikiText2(fixture.WikiTextFile).Text);
        var ptbTokens = model.Tokenizer!.Encode(PerplexityDatasets.LoadPtb(fixture.PtbFile).Text);
        // LLM-Pruner's windows: numel // L full windows, the rest dropped.
        var wiki = Perplexity.Evaluate(model.Module, wikiTokens.Take(wikiTokens.Length / Window * Window).ToArray(), Window).Perplexity;
        var ptb = Perplexity.Evaluate(model.Module, ptbTokens.Take(ptbTokens.Length / Window * Window).ToArray(), Window).Perplexity;
        var boolq = ZeroShotEvaluator.EvaluateTask(ZeroShotTasks.Load(ZeroShotTaskKind.BoolQ, fixture.BoolQFile), new TorchLoglikelihoodScorer(model), LengthUnit.CodePoints);
        return (wiki, ptb, boolq.Acc);
    }

    [Fact]
    public async Task RunAsync_LabelledTaskFile_RowsShowTheLabel()
    {
        var options = Options(ComparisonMethods.ShortGpt);
        options.PerplexityDatasets = [];
        options.Tasks = [new ZeroShotTaskFile(ZeroShotTaskKind.BoolQ, fixture.BoolQFile, "my-yes-no")];

        var result = await Comparison.RunAsync(fixture.ModelFolder, ComparisonFixture.Calibration, options);

        result.Dense.Tasks.Single().Task.Should().Be("my-yes-no");
        result.Rows.Single().Tasks.Single().Task.Should().Be("my-yes-no");
    }

    [Fact]
    public async Task RunAsync_SameLayersRemovedTwice_ReusesTheFirstEvaluation()
    {
        var options = Options(ComparisonMethods.ShortGpt);
        options.Ratios = [0.3, 0.301]; // the same number of layers, hence (one-shot, same scores) the same layers

        var result = await Comparison.RunAsync(fixture.ModelFolder, ComparisonFixture.Calibration, options);

        result.Rows.Should().HaveCount(2);
        result.Rows[1].RemovedLayers.Should().Equal(result.Rows[0].RemovedLayers);
        result.Rows[0].EvaluationReusedFrom.Should().BeNull();
        result.Rows[1].EvaluationReusedFrom.Should().Be("block-influence@0.3");
        result.Rows[1].EvaluationSeconds.Should().Be(0);
        result.Rows[1].Perplexity.Should().Equal(result.Rows[0].Perplexity);
        result.Dense.EvaluationReusedFrom.Should().BeNull();
    }

    [Fact]
    public void Validate_SameLabelTwice_ReportsTheRepeat()
    {
        var options = Options(ComparisonMethods.ShortGpt);
        options.Tasks = [new ZeroShotTaskFile(ZeroShotTaskKind.BoolQ, fixture.BoolQFile, "x"), new ZeroShotTaskFile(ZeroShotTaskKind.Piqa, fixture.BoolQFile, "x")];

        var act = () => options.Validate();

        act.Should().Throw<Exception>().WithMessage("*repeated: x*");
    }

    [Fact]
    public async Task RunAsync_TwoMethodsOneRatio_RowsMatchDirectPrunesAndEvaluations()
    {
        var progress = new List<ComparisonProgress>();
        var result = await Comparison.RunAsync(fixture.ModelFolder, ComparisonFixture.Calibration, Options(ComparisonMethods.Pip, ComparisonMethods.ShortGpt),
            new SyncProgress<ComparisonProgress>(progress.Add));

        result.OriginalLayerCount.Should().Be(4);
        result.Rows.Select(r => (r.MethodKey, r.TargetRatio)).Should().Equal(("pip", 0.3), ("block-influence", 0.3));

        // The dense row is the unpruned model evaluated directly.
        using (var dense = TorchCausalLM.Load(fixture.ModelFolder))
        {
            var (wiki, ptb, boolq) = EvaluateDirectly(dense);
            result.Dense.RemovedLayers.Should().BeEmpty();
            result.Dense.ParameterCount.Should().Be(dense.ParameterCount);
            result.OriginalParameterCount.Should().Be(dense.ParameterCount);
            result.Dense.Perplexity.Select(p => p.Dataset).Should().Equal("wikitext2", "ptb");
            result.Dense.Perplexity[0].Perplexity.Should().BeApproximately(wiki, 1e-6 * wiki);
            result.Dense.Perplexity[1].Perplexity.Should().BeApproximately(ptb, 1e-6 * ptb);
            result.Dense.Tasks.Single().Acc.Should().Be(boolq);
        }

        foreach (var (row, metric, iterative, discriminator) in new[] { (result.Rows[0], "pip", true, true), (result.Rows[1], "block-influence", false, false) })
        {
            using var model = TorchCausalLM.Load(fixture.ModelFolder);
            var report = await DirectPipeline(metric, iterative, discriminator).RunAsync(model, ComparisonFixture.Calibration);
            var (wiki, ptb, boolq) = EvaluateDirectly(model);

            row.RemovedLayers.Should().Equal(report.RemovedOriginalLayers, $"{metric} must remove the same layers as the pipeline run directly");
            row.LayerCount.Should().Be(model.LayerCount);
            row.ParameterCount.Should().Be(model.ParameterCount);
            row.RemovedParameterRatio.Should().BeApproximately(report.RemovedParameterRatio, 1e-12);
            row.Perplexity[0].Perplexity.Should().BeApproximately(wiki, 1e-6 * wiki, metric);
            row.Perplexity[1].Perplexity.Should().BeApproximately(ptb, 1e-6 * ptb, metric);
            row.Tasks.Single().Acc.Should().Be(boolq);
            row.Tasks.Single().Shown.Should().Be(boolq, "BoolQ reports acc only");
            row.AverageAccuracy.Should().Be(boolq);
            row.Report.Should().NotBeNull();

            var importance = result.Importance.Single(i => i.MethodKey == row.MethodKey);
            importance.OriginalLayerIndices.Should().Equal(0, 1, 2, 3);
            importance.Scores.Should().Equal(report.Rounds[0].Scores, "the importance is the first round's scores on the dense model");
            importance.Normalized.Min().Should().Be(0);
            importance.Normalized.Max().Should().Be(1);
        }

        // Two layers of ~12 % each fit in 30 %: PIP removes them one per round, the one-shot method both at once.
        result.Rows[0].RemovedLayers.Should().HaveCount(2);
        result.Rows[0].Report!.Rounds.Should().HaveCount(2);
        result.Rows[1].RemovedLayers.Should().HaveCount(2);
        result.Rows[1].Report!.Rounds.Should().HaveCount(1);

        // The perplexity datasets record the join and the dropped partial window.
        var wikiSetup = result.Setup.Datasets[0];
        wikiSetup.EvaluatedTokens.Should().Be(wikiSetup.Tokens / Window * Window);
        result.Setup.Tasks.Single().Items.Should().Be(3);

        progress.Where(p => p.Stage == ComparisonStage.RunCompleted).Select(p => p.Run).Should().Equal(0, 1, 2);
        progress.Should().Contain(p => p.Stage == ComparisonStage.Pruning && p.Run == 1);
        progress.Should().Contain(p => p.Stage == ComparisonStage.Perplexity && p.Item == "ptb");
        progress.Should().Contain(p => p.Stage == ComparisonStage.ZeroShot && p.Item == "boolq");
        progress.Select(p => p.RunCount).Distinct().Should().Equal(3);
    }

    [Fact]
    public async Task RunAsync_MissingDatasetFile_FailsNamingItBeforeLoadingAModel()
    {
        var options = Options(ComparisonMethods.Magnitude);
        var missing = Path.Combine(fixture.Root, "absent", "ptb.valid.txt");
        options.PerplexityDatasets[1] = new PerplexityDatasetFile(PerplexityDatasets.PtbName, missing);
        var loads = 0;

        var act = () => Comparison.RunAsync(() =>
        {
            loads++;
            return TorchCausalLM.Load(fixture.ModelFolder);
        }, "tiny", ComparisonFixture.Calibration, options);

        await act.Should().ThrowAsync<FileNotFoundException>().WithMessage($"PTB file '{missing}' does not exist.");
        loads.Should().Be(0);
    }

    [Fact]
    public async Task RunAsync_CancelledToken_ThrowsOperationCanceled()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        var act = () => Comparison.RunAsync(fixture.ModelFolder, ComparisonFixture.Calibration, Options(ComparisonMethods.Magnitude), cancellationToken: cancelled.Token);

        await act.Should().ThrowAsync<OperationCanceledException>();
    }

    [Fact]
    public async Task RunAsync_RatioThatFitsNoLayer_RowIsTheDenseModelAndImportanceComesFromALaterRatio()
    {
        var options = Options(ComparisonMethods.Magnitude);
        options.Ratios = [0.3, 0.05];
        options.Tasks = [];
        options.PerplexityDatasets.RemoveAt(1);

        var result = await Comparison.RunAsync(fixture.ModelFolder, ComparisonFixture.Calibration, options);

        result.Setup.Ratios.Should().Equal(0.05, 0.3);
        result.Rows[0].TargetRatio.Should().Be(0.05);
        result.Rows[0].RemovedLayers.Should().BeEmpty();
        result.Rows[0].Perplexity[0].Perplexity.Should().Be(result.Dense.Perplexity[0].Perplexity);
        result.Rows[0].AverageAccuracy.Should().BeNull();
        result.Rows[1].RemovedLayers.Should().HaveCount(2);
        result.Importance.Single().Scores.Should().Equal(result.Rows[1].Report!.Rounds[0].Scores);
    }

    [Fact]
    public void Validate_SeveralProblems_ListsEveryOne()
    {
        var options = new ComparisonOptions
        {
            Methods = [ComparisonMethods.Pip, ComparisonMethods.Pip, ComparisonMethods.Magnitude with { Key = "m", ConsistencyDiscriminator = true }],
            Ratios = [0, 0.2, 1.5],
            PerturbationSets = 1,
            Norm = "L7",
            PerplexityDatasets = [new PerplexityDatasetFile("c4", "c4.json")],
            Windowing = new CorpusWindowing { Window = 1 },
            MaxItems = 0,
        };

        var act = options.Validate;

        var message = act.Should().Throw<ArgumentException>().Which.Message;
        message.Should().Contain("repeated: pip").And.Contain("'m' asks for the consistency discriminator")
            .And.Contain("Ratios: 0 is not in (0, 1)").And.Contain("Ratios: 1.5 is not in (0, 1)")
            .And.Contain("needs at least 2").And.Contain("unknown norm 'L7'").And.Contain("unknown dataset 'c4'")
            .And.Contain("window length must be at least 2").And.Contain("MaxItems");
    }

    [Fact]
    public void FitCalibrationToTokens_LongSample_CutAtTheLastWordBoundaryThatFits()
    {
        using var model = TorchCausalLM.Load(fixture.ModelFolder);
        // Byte-level tokens plus BOS: "aaa bbb ccc ddd" is 16 tokens; at most 11 keeps "aaa bbb" (8) but not "aaa bbb ccc" (12).
        var set = new CalibrationSet([new CalibrationSample(0, "aaa bbb ccc ddd"), new CalibrationSample(1, "short")], "corpus.txt");

        var fitted = Comparison.FitCalibrationToTokens(set, model, 11);

        fitted.Samples.Select(s => s.Text).Should().Equal("aaa bbb", "short");
        fitted.Samples.Select(s => s.Index).Should().Equal(0, 1);
        fitted.SourcePath.Should().Be("corpus.txt");
        model.Tokenize(fitted.Samples[0].Text).Count.Should().BeLessThanOrEqualTo(11);
    }

    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
