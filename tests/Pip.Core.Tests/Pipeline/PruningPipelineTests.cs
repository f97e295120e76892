namespace Pip.Tests.Pipeline;

public class PruningPipelineTests
{
    // Importance by original layer; the removal order at 20 % of 2000 parameters (4 layers) is 3, 5, 1, 7.
    private static readonly double[] Importance = [5, 3, 8, 1, 9, 2, 7, 4, 6, 10];

    private static PruningPipeline Build(IImportanceMetric metric, Action<PipelineBuilder>? more = null, Action<PipelineOptions>? configure = null)
    {
        PipelineBuilder builder = new PipelineBuilder().UseMetric(metric).Configure(o => configure?.Invoke(o));
        more?.Invoke(builder);
        return builder.Build();
    }

    [Fact]
    public async Task RunAsync_IterativeWithKnownImportance_RemovesInOrderAndStopsAtTarget()
    {
        var model = new FakeModel(10, 100, 1000);
        PruningPipeline pipeline = Build(new FixedMetric("fixed", Importance));

        PruningReport report = await pipeline.RunAsync(model, Texts.Samples(2));

        report.RemovedOriginalLayers.Should().Equal(3, 5, 1, 7);
        report.Rounds.Should().HaveCount(4).And.OnlyContain(r => r.Removed.Count == 1);
        model.OriginalLayerIndices.Should().Equal(0, 2, 4, 6, 8, 9);
        report.RemainingOriginalLayers.Should().Equal(0, 2, 4, 6, 8, 9);
        report.FinalParameterCount.Should().Be(1600);
        report.RemovedParameterRatio.Should().BeApproximately(0.2, 1e-12);
        report.StopReason.Should().Be(PruningStopReason.TargetReached);
        report.TargetReached.Should().BeTrue();
    }

    [Fact]
    public async Task RunAsync_Rounds_RecordScoresIndicesAndParameterCounts()
    {
        var model = new FakeModel(10, 100, 1000);
        PruningPipeline pipeline = Build(new FixedMetric("fixed", Importance));

        PruningReport report = await pipeline.RunAsync(model, Texts.Samples(1));

        PruningRound second = report.Rounds[1];
        second.Round.Should().Be(1);
        second.OriginalLayerIndices.Should().Equal(0, 1, 2, 4, 5, 6, 7, 8, 9);
        second.Scores.Should().Equal(5, 3, 8, 9, 2, 7, 4, 6, 10);
        second.Candidates.Should().Equal(Enumerable.Range(0, 9));
        second.Removed.Should().ContainSingle().Which.Should().Be(new LayerRemoval(4, 5, 2, 100));
        second.LayerCountBefore.Should().Be(9);
        second.LayerCountAfter.Should().Be(8);
        second.ParameterCountBefore.Should().Be(1900);
        second.ParameterCountAfter.Should().Be(1800);
        second.WallSeconds.Should().BeGreaterThanOrEqualTo(second.ScoringSeconds);
        report.Settings.Metric.Should().Be("fixed");
        report.Settings.Strategy.Should().Be("iterative");
        report.Settings.Perturber.Should().BeNull();
        report.Settings.PerturbationSets.Should().Be(0);
    }

    [Fact]
    public async Task RunAsync_Iterative_RescoresThePrunedModel()
    {
        // Removing original layer 0 makes original layer 1 important: iterative scoring sees it, one-shot does not.
        static double Score(IPrunableModel model, int layer)
        {
            int original = model.OriginalLayerIndices[layer];
            bool zeroGone = !model.OriginalLayerIndices.Contains(0);
            return original switch { 0 => 0, 1 => zeroGone ? 100 : 1, _ => 10 + original };
        }

        var iterativeModel = new FakeModel(10, 100, 1000);
        var oneShotModel = new FakeModel(10, 100, 1000);
        var target = PruningTarget.LayerCount(2);

        PruningReport iterative = await Build(new FixedMetric("m", Score), configure: o => o.Target = target).RunAsync(iterativeModel, Texts.Samples(1));
        PruningReport oneShot = await Build(new FixedMetric("m", Score), b => b.UseOneShot(), o => o.Target = target).RunAsync(oneShotModel, Texts.Samples(1));

        iterative.RemovedOriginalLayers.Should().Equal(0, 2);
        oneShot.RemovedOriginalLayers.Should().Equal(0, 1);
        oneShot.Rounds.Should().ContainSingle();
        oneShot.StopReason.Should().Be(PruningStopReason.TargetReached);
    }

    [Fact]
    public async Task RunAsync_LayersPerRound_RemovesThatManyPerRound()
    {
        var model = new FakeModel(10, 100, 1000);
        PruningPipeline pipeline = Build(new FixedMetric("fixed", Importance), b => b.UseIterativeGreedy(new IterativeGreedyStrategyOptions { LayersPerRound = 3 }));

        PruningReport report = await pipeline.RunAsync(model, Texts.Samples(1));

        report.Rounds.Select(r => r.Removed.Count).Should().Equal(3, 1);
        report.RemovedOriginalLayers.Should().Equal(3, 5, 1, 7);
    }

    [Fact]
    public async Task RunAsync_PerturbationMetric_GetsKSetsOfTwinsWithDerivedSeeds()
    {
        var model = new FakeModel(10, 100, 1000);
        var metric = new FixedMetric("pert", Importance, usesPerturbations: true);
        PruningPipeline pipeline = Build(metric, b => b.UseRandomCharPerturber(), o => o.PerturbationSets = 2);

        PruningReport report = await pipeline.RunAsync(model, Texts.Samples(3));

        metric.Requests.Should().HaveCount(4);
        ImportanceRequest first = metric.Requests[0];
        first.PerturbationSets.Should().HaveCount(2).And.OnlyContain(s => s.Count == 3);
        first.PerturbationSets[0].Select(t => t.Original.Index).Should().Equal(0, 1, 2);
        first.PerturbationSets[0][0].Text.Should().NotBe(first.PerturbationSets[1][0].Text);
        metric.Requests[1].PerturbationSets[0][0].Text.Should().NotBe(first.PerturbationSets[0][0].Text, "each round re-perturbs");
        metric.Requests.Select(r => r.Seed).Should().OnlyHaveUniqueItems();

        PruningRound round = report.Rounds[0];
        round.PerturbationSets.Should().HaveCount(2);
        TwinRecord twin = round.PerturbationSets[1][2];
        twin.SampleIndex.Should().Be(2);
        twin.Text.Should().Be(first.PerturbationSets[1][2].Text);
        twin.Edits.Should().Equal(first.PerturbationSets[1][2].Edits);
        twin.TokenIds.Should().Equal(model.Tokenize(twin.Text));
        report.Samples[1].TokenIds.Should().Equal(model.Tokenize(report.Samples[1].Text));
        report.Settings.Perturber.Should().Be("random-char");
        report.Settings.PerturbationSets.Should().Be(2);
    }

    [Fact]
    public async Task RunAsync_RecordTokenIdsOff_LeavesTokenIdsOut()
    {
        PruningPipeline pipeline = Build(new FixedMetric("pert", Importance, usesPerturbations: true), b => b.UseRandomCharPerturber(), o => o.RecordTokenIds = false);

        PruningReport report = await pipeline.RunAsync(new FakeModel(10, 100, 1000), Texts.Samples(2));

        report.Samples.Should().OnlyContain(s => s.TokenIds == null);
        report.Rounds.SelectMany(r => r.PerturbationSets).SelectMany(s => s).Should().OnlyContain(t => t.TokenIds == null);
    }

    [Fact]
    public async Task RunAsync_SameSeed_ReproducesTwinsAndDecisions()
    {
        async Task<PruningReport> Run() => await Build(new FixedMetric("pert", Importance, usesPerturbations: true), b => b.UseRandomCharPerturber())
            .RunAsync(new FakeModel(10, 100, 1000), Texts.Samples(2));

        PruningReport a = await Run();
        PruningReport b = await Run();

        b.Rounds.Select(r => r.PerturbationSets.SelectMany(s => s).Select(t => t.Text)).Should()
            .BeEquivalentTo(a.Rounds.Select(r => r.PerturbationSets.SelectMany(s => s).Select(t => t.Text)), o => o.WithStrictOrdering());
        b.RemovedOriginalLayers.Should().Equal(a.RemovedOriginalLayers);
    }

    [Fact]
    public async Task RunAsync_ConsistencyDiscriminator_ExcludesInconsistentLayerAndReportsIt()
    {
        // Original layer 3 is the least important on average but its scores vary wildly across sets.
        var metric = new FixedMetric("pert", Importance, usesPerturbations: true)
        {
            PerSet = (set, model, layer) => model.OriginalLayerIndices[layer] == 3 ? (set == 0 ? 0.1 : 5) : Importance[model.OriginalLayerIndices[layer]],
        };
        var model = new FakeModel(10, 100, 1000);
        PruningPipeline pipeline = Build(metric, b => b.UseRandomCharPerturber().AddConsistencyDiscriminator(), o => o.Target = PruningTarget.LayerCount(2));

        PruningReport report = await pipeline.RunAsync(model, Texts.Samples(1));

        report.RemovedOriginalLayers.Should().Equal(5, 1);
        report.Rounds.Should().OnlyContain(r => r.Excluded.Count == 1);
        LayerExclusion exclusion = report.Rounds[1].Excluded[0];
        exclusion.OriginalLayer.Should().Be(3);
        exclusion.Layer.Should().Be(3);
        exclusion.Filter.Should().Be("consistency");
        exclusion.Reason.Should().Contain("coefficient of variation");
        report.Rounds[0].PerPerturbationSetScores.Should().HaveCount(3);
        report.Settings.Filters.Should().Equal("consistency");
    }

    [Fact]
    public async Task RunAsync_GuardLeavesNoCandidates_StopsWithNoCandidates()
    {
        var model = new FakeModel(4, 100, 0);
        PruningPipeline pipeline = Build(new FixedMetric("fixed", [1, 2, 3, 4]), b => b.AddLayerGuard(1, 1), o => o.Target = PruningTarget.LayerCount(3));

        PruningReport report = await pipeline.RunAsync(model, Texts.Samples(1));

        report.RemovedOriginalLayers.Should().Equal(1, 2);
        report.StopReason.Should().Be(PruningStopReason.NoCandidates);
        report.TargetReached.Should().BeFalse();
        report.Rounds[^1].Removed.Should().BeEmpty();
        report.Rounds[^1].Excluded.Select(e => e.OriginalLayer).Should().Equal(0, 3);
    }

    [Fact]
    public async Task RunAsync_LayerTargetTooLarge_Throws()
    {
        PruningPipeline pipeline = Build(new FixedMetric("fixed", [1, 2, 3]), configure: o => o.Target = PruningTarget.LayerCount(3));

        Func<Task> act = () => pipeline.RunAsync(new FakeModel(3), Texts.Samples(1));

        await act.Should().ThrowAsync<ArgumentException>().WithMessage("*at most 2*");
    }

    [Fact]
    public async Task RunAsync_NoSamples_Throws()
    {
        PruningPipeline pipeline = Build(new FixedMetric("fixed", Importance));

        Func<Task> act = () => pipeline.RunAsync(new FakeModel(10), Array.Empty<CalibrationSample>());

        await act.Should().ThrowAsync<ArgumentException>().WithMessage("*at least one*");
    }

    [Fact]
    public async Task RunAsync_CancelledDuringFirstScoring_ThrowsAndLeavesModelUntouched()
    {
        using var cts = new CancellationTokenSource();
        var metric = new FixedMetric("fixed", Importance) { OnScore = (_, _) => cts.Cancel() };
        var model = new FakeModel(10, 100, 1000);
        PruningPipeline pipeline = Build(metric);

        Func<Task> act = () => pipeline.RunAsync(model, Texts.Samples(1), null, cts.Token);

        await act.Should().ThrowAsync<OperationCanceledException>();
        model.RemoveCalls.Should().Be(0);
        model.LayerCount.Should().Be(10);
    }

    [Fact]
    public async Task RunAsync_CancelledInThirdRound_ThrowsAfterTwoRemovals()
    {
        using var cts = new CancellationTokenSource();
        var metric = new FixedMetric("fixed", Importance) { OnScore = (r, _) => { if (r.Round == 2) { cts.Cancel(); } } };
        var model = new FakeModel(10, 100, 1000);

        Func<Task> act = () => Build(metric).RunAsync(model, Texts.Samples(1), null, cts.Token);

        await act.Should().ThrowAsync<OperationCanceledException>();
        model.OriginalLayerIndices.Should().Equal(0, 1, 2, 4, 6, 7, 8, 9);
    }

    [Fact]
    public async Task RunAsync_CancelledWhilePerturbing_Throws()
    {
        using var cts = new CancellationTokenSource();
        var progress = new CancellingProgress(cts, PruningStage.Perturbing);
        var model = new FakeModel(10, 100, 1000);
        PruningPipeline pipeline = Build(new FixedMetric("pert", Importance, usesPerturbations: true), b => b.UseRandomCharPerturber());

        Func<Task> act = () => pipeline.RunAsync(model, Texts.Samples(3), progress, cts.Token);

        await act.Should().ThrowAsync<OperationCanceledException>();
        model.RemoveCalls.Should().Be(0);
    }

    [Fact]
    public async Task RunAsync_Progress_ReportsStagesAndCompletedRounds()
    {
        var progress = new ListProgress<PruningProgress>();
        PruningPipeline pipeline = Build(new FixedMetric("pert", Importance, usesPerturbations: true), b => b.UseRandomCharPerturber(), o => o.PerturbationSets = 2);

        PruningReport report = await pipeline.RunAsync(new FakeModel(10, 100, 1000), Texts.Samples(2), progress);

        progress.Items.Where(p => p.Stage == PruningStage.RoundCompleted).Select(p => p.CompletedRound).Should().Equal(report.Rounds);
        progress.Items.Where(p => p.Round == 0 && p.Stage == PruningStage.Perturbing).Select(p => p.Completed).Should().Equal(1, 2, 3, 4);
        progress.Items.Should().Contain(p => p.Stage == PruningStage.Scoring && p.Round == 3);
    }

    [Fact]
    public async Task RunAsync_MetricReturnsWrongCount_ThrowsNamingMetric()
    {
        var bad = new WrongCountMetric();

        Func<Task> act = () => Build(bad).RunAsync(new FakeModel(4), Texts.Samples(1));

        await act.Should().ThrowAsync<InvalidOperationException>().WithMessage("*'wrong'*3 scores*4 layers*");
    }

    [Fact]
    public async Task RunAsync_StrategyPicksNonCandidate_ThrowsNamingStrategy()
    {
        PruningPipeline pipeline = Build(new FixedMetric("fixed", [1, 2, 3, 4]), b => b.UseStrategy(new RemoveFirstStrategy()).AddLayerGuard(1, 0));

        Func<Task> act = () => pipeline.RunAsync(new FakeModel(4), Texts.Samples(1));

        await act.Should().ThrowAsync<InvalidOperationException>().WithMessage("*'first'*layer 0*not a candidate*");
    }

    [Fact]
    public async Task RunAsync_CalibrationFileInOptions_LoadsSamplesFromIt()
    {
        using var folder = new TempFolder();
        string path = folder.File("calib.txt", string.Join("\n\n", Enumerable.Range(0, 5).Select(i => $"paragraph {i} " + Texts.Long)));
        PruningPipeline pipeline = Build(new FixedMetric("fixed", Importance), configure: o => o.Calibration = new CalibrationOptions { FilePath = path, SampleCount = 3 });

        PruningReport report = await pipeline.RunAsync(new FakeModel(10, 100, 1000));

        report.Samples.Should().HaveCount(3).And.OnlyContain(s => s.Text.StartsWith("paragraph", StringComparison.Ordinal));
        report.Settings.Options.Should().Contain("calibration.SampleCount", "3");
    }

    [Fact]
    public async Task RunAsync_LexiconPerturberWithoutSource_UsesCalibrationFileWords()
    {
        using var folder = new TempFolder();
        string path = folder.File("calib.txt", string.Join("\n\n", Enumerable.Range(0, 4).Select(i => $"They met later that day {i} " + Texts.Long)) + "\n\nalter alter alter");
        var metric = new FixedMetric("pert", Importance, usesPerturbations: true);
        PruningPipeline pipeline = Build(metric, b => b.UseLexiconPerturber(new LexiconPerturberOptions { MinWordFrequency = 3 }), o => o.Target = PruningTarget.LayerCount(1));

        await pipeline.RunAsync(new FakeModel(10, 100, 1000), CalibrationSet.Load(path, new CalibrationOptions { SampleCount = 4 }));

        // "alter" occurs 3 times only in a paragraph too short to be a sample: it is in the lexicon through the file.
        metric.Requests[0].PerturbationSets.SelectMany(s => s).SelectMany(t => t.Edits).Should().Contain(e => e.After == "alter" && e.IsRealWord);
    }

    private sealed class WrongCountMetric : IImportanceMetric
    {
        public string Name => "wrong";

        public bool UsesPerturbations => false;

        public ValueTask<LayerScores> ScoreAsync(ImportanceRequest request, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(new LayerScores(new double[request.Model.LayerCount - 1]));
    }

    private sealed class RemoveFirstStrategy : IPruningStrategy
    {
        public string Name => "first";

        public PruningDecision Decide(PruningState state) => new([0], false);
    }

    private sealed class CancellingProgress(CancellationTokenSource cts, PruningStage stage) : IProgress<PruningProgress>
    {
        public void Report(PruningProgress value)
        {
            if (value.Stage == stage)
            {
                cts.Cancel();
            }
        }
    }
}
