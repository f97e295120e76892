using System.Collections.Concurrent;
using Microsoft.Extensions.AI;

namespace Pip.Tests;

/// <summary>A scripted chat client: each request gets the next reply of the script (the last one repeats); records every request.</summary>
internal sealed class FakeChatClient : IChatClient
{
    private readonly Func<FakeChatRequest, CancellationToken, Task<string>>[] _script;
    private int _next = -1;

    public FakeChatClient(params Func<FakeChatRequest, CancellationToken, Task<string>>[] script)
    {
        _script = script;
    }

    /// <summary>Replies with fixed answers, in order.</summary>
    public static FakeChatClient Answers(params string[] answers) =>
        new([.. answers.Select(a => (Func<FakeChatRequest, CancellationToken, Task<string>>)((_, _) => Task.FromResult(a)))]);

    /// <summary>Replies with a function of the sample text in the prompt.</summary>
    public static FakeChatClient Rewrites(Func<string, string> rewrite) => new((request, _) => Task.FromResult(rewrite(request.SampleText)));

    /// <summary>Throws on every request.</summary>
    public static FakeChatClient Throws(Exception exception) => new((_, _) => Task.FromException<string>(exception));

    /// <summary>Never answers: waits until the request's token is cancelled.</summary>
    public static FakeChatClient Hangs() => new(async (_, ct) =>
    {
        await Task.Delay(Timeout.Infinite, ct);
        return "unreachable";
    });

    public ConcurrentQueue<FakeChatRequest> Requests { get; } = new();

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var request = new FakeChatRequest([.. messages], options);
        Requests.Enqueue(request);
        int index = Math.Min(Interlocked.Increment(ref _next), _script.Length - 1);
        string text = await _script[index](request, cancellationToken);
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, text));
    }

    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException();

    public object? GetService(Type serviceType, object? serviceKey = null) => null;

    public void Dispose()
    {
    }
}

/// <summary>One request to <see cref="FakeChatClient"/>.</summary>
internal sealed record FakeChatRequest(IReadOnlyList<ChatMessage> Messages, ChatOptions? Options)
{
    /// <summary>The text of the last user message.</summary>
    public string Prompt => Messages.Last(m => m.Role == ChatRole.User).Text;

    /// <summary>The sample text: what follows "Text:\n" in the default templates.</summary>
    public string SampleText => Prompt[(Prompt.IndexOf("Text:\n", StringComparison.Ordinal) + "Text:\n".Length)..];
}
