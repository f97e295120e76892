using System.Text.Json;
using Microsoft.Extensions.Options;
using Pip.Search;

namespace Pip.Tests.Search;

public class SearchRunnerTests
{
    private static TpeSearcher Tpe(int seed = 0) => new(SearchProblems.QuadraticSpace, new TpeSearcherOptions { Seed = seed });

    [Fact]
    public async Task RunAsync_ThrowingObjective_RecordsFailedTrialsAndGoesOn()
    {
        var runner = new SearchRunner(Tpe(), new SearchRunnerOptions { MaxTrials = 40 });

        SearchResult result = await runner.RunAsync((p, _) => p.GetString("calibration") == "code"
            ? throw new InvalidOperationException("out of memory on code")
            : ValueTask.FromResult(p.GetDouble("x") > 4 ? double.NaN : SearchProblems.Quadratic(p)));

        result.Trials.Should().HaveCount(40);
        result.Trials.Select(t => t.Number).Should().Equal(Enumerable.Range(0, 40));
        Trial[] failed = result.Trials.Where(t => t.Status == TrialStatus.Failed).ToArray();
        failed.Should().NotBeEmpty();
        result.FailedCount.Should().Be(failed.Length);
        failed.Should().OnlyContain(t => t.Value == null && !t.HasValue);
        failed.Where(t => t.Parameters.GetString("calibration") == "code").Should().OnlyContain(t => t.Error == "InvalidOperationException: out of memory on code");
        failed.Where(t => t.Parameters.GetString("calibration") != "code").Should().OnlyContain(t => t.Error == "The objective returned NaN.");
        result.Trials.Where(t => t.Parameters.GetString("calibration") != "code" && t.Parameters.GetDouble("x") <= 4)
            .Should().OnlyContain(t => t.Status == TrialStatus.Completed);
        result.Best!.Parameters.GetString("calibration").Should().NotBe("code");
    }

    [Fact]
    public async Task RunAsync_EveryTrialFails_NoBestAndNaNCurve()
    {
        SearchResult result = await new SearchRunner(Tpe(), new SearchRunnerOptions { MaxTrials = 15 })
            .RunAsync((_, _) => throw new IOException("disk full"));

        result.Trials.Should().HaveCount(15).And.OnlyContain(t => t.Status == TrialStatus.Failed && t.Error == "IOException: disk full");
        result.Best.Should().BeNull();
        result.BestSoFar.Should().HaveCount(15).And.OnlyContain(v => double.IsNaN(v));
    }

    [Fact]
    public async Task RunAsync_Progress_ReportsEveryTrialWithBestSoFar()
    {
        var reports = new List<SearchProgress>();

        SearchResult result = await new SearchRunner(Tpe(), new SearchRunnerOptions { MaxTrials = 25 })
            .RunAsync((p, _) => ValueTask.FromResult(SearchProblems.Quadratic(p)), new SyncProgress<SearchProgress>(reports.Add));

        reports.Select(r => r.TrialCount).Should().Equal(Enumerable.Range(1, 25));
        reports.Should().OnlyContain(r => r.MaxTrials == 25);
        reports.Select(r => r.Trial).Should().Equal(result.Trials);
        reports.Select(r => r.Best!.Value!.Value).Should().Equal(result.BestSoFar);
        result.BestSoFar.Should().BeInDescendingOrder();
        result.BestSoFar[^1].Should().Be(result.Best!.Value!.Value).And.Be(result.Trials.Min(t => t.Value!.Value));
    }

    [Fact]
    public async Task RunAsync_CancelledBetweenTrials_StopsWithOperationCanceled()
    {
        using var cts = new CancellationTokenSource();
        int calls = 0;
        var reports = new List<SearchProgress>();
        var progress = new SyncProgress<SearchProgress>(r =>
        {
            reports.Add(r);
            if (r.TrialCount == 5)
            {
                cts.Cancel();
            }
        });

        Func<Task> act = () => new SearchRunner(Tpe(), new SearchRunnerOptions { MaxTrials = 50 })
            .RunAsync((p, _) => { calls++; return ValueTask.FromResult(SearchProblems.Quadratic(p)); }, progress, cts.Token);

        await act.Should().ThrowAsync<OperationCanceledException>();
        calls.Should().Be(5);
        reports.Should().HaveCount(5);
    }

    [Fact]
    public async Task RunAsync_CancelledInsideObjective_StopsWithoutRecordingAFailure()
    {
        using var cts = new CancellationTokenSource();
        var reports = new List<SearchProgress>();

        Func<Task> act = () => new SearchRunner(Tpe(), new SearchRunnerOptions { MaxTrials = 50 })
            .RunAsync(
                async (p, ct) =>
                {
                    if (reports.Count == 3)
                    {
                        cts.CancelAfter(TimeSpan.FromMilliseconds(20));
                        await Task.Delay(Timeout.Infinite, ct);
                    }

                    return SearchProblems.Quadratic(p);
                },
                new SyncProgress<SearchProgress>(reports.Add),
                cts.Token);

        await act.Should().ThrowAsync<OperationCanceledException>();
        reports.Should().HaveCount(3).And.OnlyContain(r => r.Trial.Status == TrialStatus.Completed);
    }

    [Fact]
    public async Task RunAsync_ObjectiveCancelledByItsOwnTimeout_IsAFailedTrial()
    {
        SearchResult result = await new SearchRunner(Tpe(), new SearchRunnerOptions { MaxTrials = 3 })
            .RunAsync((_, _) => throw new TaskCanceledException("evaluation timed out"));

        result.Trials.Should().HaveCount(3).And.OnlyContain(t => t.Status == TrialStatus.Failed && t.Error!.Contains("evaluation timed out"));
    }

    [Fact]
    public async Task RunAsync_ResumedFromJson_GivesTheSameTrialsAsAnUninterruptedRun()
    {
        static ValueTask<double> Objective(ParameterAssignment p, CancellationToken _) => ValueTask.FromResult(SearchProblems.Quadratic(p));
        SearchResult whole = await new SearchRunner(Tpe(8), new SearchRunnerOptions { MaxTrials = 30 }).RunAsync(Objective);
        SearchResult first = await new SearchRunner(Tpe(8), new SearchRunnerOptions { MaxTrials = 17 }).RunAsync(Objective);

        Trial[] saved = JsonSerializer.Deserialize<Trial[]>(JsonSerializer.Serialize(first.Trials))!;
        SearchResult resumed = await new SearchRunner(Tpe(8), new SearchRunnerOptions { MaxTrials = 30 }).RunAsync(Objective, saved);

        resumed.Trials.Should().HaveCount(30);
        resumed.Trials.Select(t => (t.Number, t.Parameters, t.Value)).Should().Equal(whole.Trials.Select(t => (t.Number, t.Parameters, t.Value)));
    }

    [Fact]
    public async Task RunAsync_HistoryAlreadyAtBudget_RunsNothing()
    {
        SearchResult first = await new SearchRunner(Tpe(), new SearchRunnerOptions { MaxTrials = 4 })
            .RunAsync((p, _) => ValueTask.FromResult(SearchProblems.Quadratic(p)));

        SearchResult again = await new SearchRunner(Tpe(), new SearchRunnerOptions { MaxTrials = 3 })
            .RunAsync((_, _) => throw new InvalidOperationException("must not run"), first.Trials);

        again.Trials.Should().Equal(first.Trials);
        again.Best.Should().Be(first.Best);
    }

    [Fact]
    public void Constructor_InvalidOptions_Throws()
    {
        Action act = () => _ = new SearchRunner(Tpe(), new SearchRunnerOptions { MaxTrials = 0 });

        act.Should().Throw<OptionsValidationException>().Which.Failures.Should().ContainSingle(f => f.Contains("MaxTrials"));
    }

    /// <summary>Reports synchronously (<see cref="Progress{T}"/> posts to the thread pool).</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
