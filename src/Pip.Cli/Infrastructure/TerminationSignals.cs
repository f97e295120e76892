using System.Runtime.InteropServices;

namespace Pip.Cli.Infrastructure;

/// <summary>
/// Turns SIGINT (Ctrl-C) and SIGTERM into the cancellation of one run of <c>pip-prune</c>, for as long as the run lasts.
/// </summary>
/// <remarks>
/// This replaces System.CommandLine's own handler (<c>InvocationConfiguration.ProcessTerminationTimeout</c>), which
/// crashes the process: each signal runs its handler on a thread of its own, which waits for the command up to the
/// timeout and then calls <c>TaskCompletionSource.SetResult</c>; a second signal (GNU <c>timeout</c> sends its signal to
/// the child and again to the child's process group; a user presses Ctrl-C twice) calls it again on the completed source,
/// and the <see cref="InvalidOperationException"/> it throws is unhandled. Here every signal only cancels (idempotent,
/// never throws), and the runtime's default action (ending the process) is suppressed while the run is registered, so the
/// command ends through its own cancellation path: the "cancelled." message and <see cref="ExitCodes.Cancelled"/>.
/// </remarks>
internal sealed class TerminationSignals : IDisposable
{
    private readonly CancellationTokenSource _cancellation;
    private readonly List<PosixSignalRegistration> _registrations = [];

    /// <summary>Starts listening; <see cref="Token"/> is cancelled by a signal or by <paramref name="outer"/>.</summary>
    public TerminationSignals(CancellationToken outer)
    {
        _cancellation = CancellationTokenSource.CreateLinkedTokenSource(outer);
        if (OperatingSystem.IsAndroid() || OperatingSystem.IsIOS() || OperatingSystem.IsTvOS() || OperatingSystem.IsBrowser())
            return;
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM })
            _registrations.Add(PosixSignalRegistration.Create(signal, OnSignal));
    }

    /// <summary>Cancelled on the first SIGINT or SIGTERM (or when the outer token is).</summary>
    public CancellationToken Token => _cancellation.Token;

    /// <summary>Simulates a signal (tests).</summary>
    internal void Signal() => Cancel();

    /// <summary>Stops listening (the default actions apply again).</summary>
    public void Dispose()
    {
        foreach (var registration in _registrations)
            registration.Dispose();
        _registrations.Clear();
        _cancellation.Dispose();
    }

    private void OnSignal(PosixSignalContext context)
    {
        // Keep the process alive: the command stops through its cancellation token and reports it.
        context.Cancel = true;
        Cancel();
    }

    private void Cancel()
    {
        try
        {
            _cancellation.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The run is over; nothing to cancel.
        }
        catch (AggregateException)
        {
            // A callback registered on the token failed; the token is cancelled all the same.
        }
    }
}
