package ui

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// maxTaskInput bounds what the run-now form takes.
const maxTaskInput = 1 << 20

type tasksData struct {
	Tasks []taskRow
}

type taskRow struct {
	Task
	Href string
}

func taskHref(id InstanceID) string {
	return "/tasks/" + url.PathEscape(id.Plug) + "/" + url.PathEscape(id.Instance)
}

func (s *Server) taskRunner() (TaskRunner, bool) {
	tr, ok := s.b.(TaskRunner)
	return tr, ok
}

func (s *Server) tasksPage(w http.ResponseWriter, r *http.Request, v *view) (string, int) {
	tr, ok := s.taskRunner()
	if !ok {
		return s.notFound(v, "The tasks page")
	}
	v.Title, v.Nav = "Tasks", "tasks"
	var d tasksData
	for _, t := range tr.Tasks() {
		d.Tasks = append(d.Tasks, taskRow{Task: t, Href: taskHref(t.ID)})
	}
	slices.SortFunc(d.Tasks, func(a, b taskRow) int {
		return strings.Compare(a.ID.String(), b.ID.String())
	})
	v.Data = d
	return "tasks", http.StatusOK
}

type taskData struct {
	Task Task
	Runs []TaskRun
	Post string
	Err  string
}

func (s *Server) findTask(r *http.Request) (TaskRunner, Task, bool) {
	tr, ok := s.taskRunner()
	if !ok {
		return nil, Task{}, false
	}
	id := InstanceID{Plug: r.PathValue("plug"), Instance: r.PathValue("instance")}
	for _, t := range tr.Tasks() {
		if t.ID == id {
			return tr, t, true
		}
	}
	return tr, Task{ID: id}, false
}

func (s *Server) taskPage(w http.ResponseWriter, r *http.Request, v *view) (string, int) {
	tr, t, ok := s.findTask(r)
	if !ok {
		return s.notFound(v, "Task "+t.ID.String())
	}
	v.Title, v.Nav = "Task "+t.ID.String(), "tasks"
	d := taskData{Task: t, Post: taskHref(t.ID) + "/run"}
	runs, err := tr.TaskRuns(t.ID, 20)
	if err != nil {
		d.Err = err.Error()
	}
	d.Runs = runs
	v.Data = d
	return "task", http.StatusOK
}

type taskResultData struct {
	Task InstanceID
	Run  TaskRun
	Err  string
	Back string
}

func (s *Server) runTask(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxTaskInput+4096)
	if !s.checkCSRF(r) {
		var mb *http.MaxBytesError
		if err := r.ParseForm(); errors.As(err, &mb) {
			http.Error(w, "the input is larger than 1 MiB", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "missing or wrong CSRF token: reload the page and try again", http.StatusForbidden)
		return
	}
	tr, t, ok := s.findTask(r)
	if !ok {
		http.Error(w, "no task "+t.ID.String(), http.StatusNotFound)
		return
	}
	ctx, cancel := s.withTimeout(r.Context())
	defer cancel()
	run, err := tr.RunTask(ctx, t.ID, []byte(r.PostFormValue("input")))
	s.log.Info("dashboard action", "action", "run task", "instance", t.ID.String(), "err", err)
	s.Notify()
	back := taskHref(t.ID)
	s.page(func(w http.ResponseWriter, r *http.Request, v *view) (string, int) {
		v.Title, v.Nav = "Run of "+t.ID.String(), "tasks"
		d := taskResultData{Task: t.ID, Run: run, Back: back}
		code := http.StatusOK
		if err != nil {
			d.Err = err.Error()
			code = http.StatusBadGateway
		}
		v.Data = d
		return "taskresult", code
	})(w, r)
}
