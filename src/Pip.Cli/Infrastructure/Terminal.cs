using Pip.Torch.Evaluation;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Pip.Cli.Infrastructure;

/// <summary>
/// The interactive terminal of one command run (only when standard output is a terminal and <c>--json</c> is off):
/// progress bars for long work (Spectre.Console, started at the first progress report) and results drawn as tables.
/// </summary>
/// <remarks>
/// While the run lasts, what the command writes to its output is held back (<see cref="Output"/>) so that it does not
/// tear the live progress display; <see cref="CompleteAsync"/> stops the display and writes it, tables as Spectre tables.
/// Without a terminal none of this exists: the output is plain text (or JSON) with no escape sequences.
/// </remarks>
internal sealed class Terminal
{
    private readonly IAnsiConsole _console;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, ProgressTask> _tasks = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _display;
    private ProgressContext? _context;
    private bool _completed;

    public Terminal(TextWriter output, bool forceAnsi)
    {
        _console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = forceAnsi ? AnsiSupport.Yes : AnsiSupport.Detect,
            ColorSystem = ColorSystemSupport.Detect,
            Interactive = InteractionSupport.Yes,
        });
    }

    /// <summary>What the command writes while it runs (replayed by <see cref="CompleteAsync"/>).</summary>
    public TerminalWriter Output { get; } = new();

    /// <summary>Whether standard output of this process is an interactive terminal (not redirected, not a dumb terminal).</summary>
    public static bool IsInteractiveConsole(TextWriter output) =>
        ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("TERM") != "dumb";

    /// <summary>Sets the bar <paramref name="key"/> (made at its first report) to <paramref name="completed"/> of <paramref name="total"/>.</summary>
    public void Report(string key, string description, double completed, double total)
    {
        lock (_lock)
        {
            if (_completed) return;
            if (_display is null)
            {
                var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _display = _console.Progress()
                    .AutoClear(false)
                    .HideCompleted(false)
                    .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                    .StartAsync(async context =>
                    {
                        _context = context;
                        ready.SetResult();
                        await _done.Task.ConfigureAwait(false);
                    });
                ready.Task.Wait();
            }

            var label = Markup.Escape(description);
            if (!_tasks.TryGetValue(key, out var task))
            {
                task = _context!.AddTask(label, autoStart: true, maxValue: Math.Max(total, 1));
                _tasks[key] = task;
            }

            task.Description = label;
            task.MaxValue = Math.Max(total, 1);
            task.Value = Math.Min(completed, task.MaxValue);
            if (completed >= total && total > 0) task.StopTask();
        }
    }

    /// <summary>Stops the progress display (bars stay visible) and writes what the command wrote, tables drawn as tables.</summary>
    public async Task CompleteAsync()
    {
        Task? display;
        lock (_lock)
        {
            _completed = true;
            display = _display;
            foreach (var task in _tasks.Values) task.StopTask();
        }

        _done.TrySetResult();
        if (display is not null) await display.ConfigureAwait(false);
        foreach (var segment in Output.TakeSegments())
        {
            if (segment is IRenderable renderable) _console.Write(renderable);
            else _console.Profile.Out.Writer.Write((string)segment);
        }

        _console.Profile.Out.Writer.Flush();
    }

    /// <summary>A two-column table of results.</summary>
    internal static Table ResultTable(IEnumerable<(string Key, string Value)> rows)
    {
        var table = new Table().Border(TableBorder.Rounded).HideHeaders().AddColumn(new TableColumn("")).AddColumn(new TableColumn(""));
        table.Columns[0].NoWrap();
        foreach (var (key, value) in rows) table.AddRow(new Text(key, new Style(decoration: Decoration.Bold)), new Text(value));
        return table;
    }
}

/// <summary>Holds a command's output while a terminal run lasts: text, and tables kept as tables.</summary>
internal sealed class TerminalWriter : StringWriter
{
    private readonly List<object> _segments = [];

    /// <summary>Adds a table of rows (drawn when the run ends).</summary>
    public void AddTable(IEnumerable<(string Key, string Value)> rows)
    {
        lock (_segments)
        {
            Cut();
            _segments.Add(Terminal.ResultTable(rows));
        }
    }

    /// <summary>The text and tables written so far, in order.</summary>
    public List<object> TakeSegments()
    {
        lock (_segments)
        {
            Cut();
            var segments = _segments.ToList();
            _segments.Clear();
            return segments;
        }
    }

    private void Cut()
    {
        var builder = GetStringBuilder();
        if (builder.Length == 0) return;
        _segments.Add(builder.ToString());
        builder.Clear();
    }
}

/// <summary>Maps the library's progress reports to progress bars.</summary>
internal static class ProgressBars
{
    /// <summary>Pruning: one bar per round (perturbing, then scoring).</summary>
    public static (string Key, string Description, double Completed, double Total)? Pruning(PruningProgress p) => p.Stage switch
    {
        PruningStage.Perturbing => ($"round {p.Round}", $"Round {p.Round}: perturbing ({p.LayerCount} layers)", p.Completed, Math.Max(1, p.Total)),
        PruningStage.Scoring => ($"round {p.Round}", $"Round {p.Round}: scoring {p.LayerCount} layers", p.Completed, Math.Max(1, p.Total)),
        PruningStage.RoundCompleted => ($"round {p.Round}", $"Round {p.Round}: done, {p.LayerCount} layers left", 1, 1),
        _ => null,
    };

    /// <summary>Perplexity evaluation: one bar of windows.</summary>
    public static (string Key, string Description, double Completed, double Total)? Perplexity(PerplexityProgress p) =>
        ("perplexity", $"Perplexity {Math.Exp(p.RunningNll):F3}", p.WindowsDone, p.WindowsTotal);

    /// <summary>Comparison: a bar of runs, and one for the current run's step.</summary>
    public static IEnumerable<(string Key, string Description, double Completed, double Total)> Comparison(ComparisonProgress p)
    {
        var ratio = p.Ratio is { } r ? ComparisonReport.RatioLabel(r) : "dense";
        yield return ("runs", $"Runs ({p.Method} {ratio})", p.Stage == ComparisonStage.RunCompleted ? p.Run + 1 : p.Run, p.RunCount);
        if (p.Stage is ComparisonStage.Pruning or ComparisonStage.Perplexity or ComparisonStage.ZeroShot && p.Total > 0)
            yield return ("step", $"{p.Method} {ratio}: {p.Stage.ToString().ToLowerInvariant()} {p.Item}", p.Done, p.Total);
    }
}

/// <summary>Reports progress to a logger and, in a terminal run, to progress bars.</summary>
internal sealed class TerminalProgress<T>(IProgress<T> inner, Terminal? terminal, Func<T, IEnumerable<(string Key, string Description, double Completed, double Total)>> bars) : IProgress<T>
{
    public void Report(T value)
    {
        inner.Report(value);
        if (terminal is null) return;
        foreach (var (key, description, completed, total) in bars(value)) terminal.Report(key, description, completed, total);
    }
}
